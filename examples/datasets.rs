//! Loads every built-in data set and prints its shapes and load time.
//!
//! ```text
//! cargo run --release --example datasets
//! STRATA_DATA=/path/to/data cargo run --release --example datasets
//! ```
//!
//! MNIST and Fashion-MNIST need their files (see `strata::datasets`); the
//! others ship inside the crate.

use std::time::Instant;

use strata::datasets::{digits, fashion_mnist, iris, mnist, Split};

fn main() -> anyhow::Result<()> {
    for (name, load) in [("digits", digits::load as fn() -> _), ("iris", iris::load)] {
        let start = Instant::now();
        let data = load()?;
        println!("{name:14} {:?} in {:.1} ms", data, start.elapsed().as_secs_f64() * 1e3);
    }
    for (name, load) in
        [("mnist", mnist::load as fn() -> strata::Result<Split>), ("fashion-mnist", fashion_mnist::load)]
    {
        let start = Instant::now();
        match load() {
            Ok(split) => println!("{name:14} {:?} in {:.0} ms", split, start.elapsed().as_secs_f64() * 1e3),
            Err(e) => println!("{name:14} not loaded: {e}"),
        }
    }
    Ok(())
}
