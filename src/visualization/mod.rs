//! Pictures of models and of training: [`Model::to_dot`](crate::Model::to_dot)
//! and [`Model::plot`](crate::Model::plot) draw the layer graph (Graphviz),
//! [`History::plot`](crate::History::plot) the loss and metric curves (the
//! `plot` feature).

#[cfg(feature = "plot")]
mod history_plot;
mod model_graph;

#[cfg(feature = "plot")]
pub use history_plot::PlotOptions;
