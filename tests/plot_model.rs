//! `Model::to_dot` and `Model::plot`: the DOT text of Sequential,
//! Functional, shared-layer and nested models, escaping, and the files
//! `plot` writes or the errors it returns.

use std::path::PathBuf;
use std::process::Command;

use strata::prelude::*;

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("strata_plot_model_{}_{name}", std::process::id()))
}

/// The `"a" -> "b";` lines of a DOT text.
fn edges(dot: &str) -> Vec<&str> {
    dot.lines().map(str::trim).filter(|l| l.contains(" -> ")).collect()
}

#[test]
fn sequential_dot_is_exact() -> anyhow::Result<()> {
    let model = Sequential::new()
        .add(Input::new([4]))
        .add(Dense::new(8).activation("relu"))
        .add(Dropout::new(0.5))
        .add(Dense::new(3).activation("softmax").name("probs"))
        .name("tiny")
        .build_on(&backend::native())?;
    let expected = r#"digraph "tiny" {
  graph [rankdir=TB];
  node [shape=box, fontname="Helvetica"];
  "input_layer" [label="input_layer (InputLayer)\nInput shape: (None, 4)\nOutput shape: (None, 4)"];
  "dense" [label="dense (Dense)\nInput shape: (None, 4)\nOutput shape: (None, 8)"];
  "dropout" [label="dropout (Dropout)\nInput shape: (None, 8)\nOutput shape: (None, 8)"];
  "probs" [label="probs (Dense)\nInput shape: (None, 8)\nOutput shape: (None, 3)"];
  "input_layer" -> "dense";
  "dense" -> "dropout";
  "dropout" -> "probs";
}
"#;
    assert_eq!(model.to_dot(), expected);
    Ok(())
}

#[test]
fn functional_two_inputs_two_outputs() -> anyhow::Result<()> {
    let image = Input::new([32]).name("image");
    let meta = Input::new([8]).name("meta");
    let x = Concatenate::new().call(&[&image, &meta])?;
    let x = Dense::new(16).activation("relu").call(&x)?;
    let score = Dense::new(1).activation("sigmoid").name("score").call(&x)?;
    let class = Dense::new(3).activation("softmax").name("class").call(&x)?;
    let model = Model::new_with(&[image, meta], &[score, class], BuildOptions::new().device(&backend::native()))?;
    let expected = r#"digraph "functional" {
  graph [rankdir=TB];
  node [shape=box, fontname="Helvetica"];
  "image" [label="image (InputLayer)\nInput shape: (None, 32)\nOutput shape: (None, 32)"];
  "meta" [label="meta (InputLayer)\nInput shape: (None, 8)\nOutput shape: (None, 8)"];
  "concatenate" [label="concatenate (Concatenate)\nInput shape: [(None, 32), (None, 8)]\nOutput shape: (None, 40)"];
  "dense" [label="dense (Dense)\nInput shape: (None, 40)\nOutput shape: (None, 16)"];
  "score" [label="score (Dense)\nInput shape: (None, 16)\nOutput shape: (None, 1)"];
  "class" [label="class (Dense)\nInput shape: (None, 16)\nOutput shape: (None, 3)"];
  "image" -> "concatenate";
  "meta" -> "concatenate";
  "concatenate" -> "dense";
  "dense" -> "score";
  "dense" -> "class";
}
"#;
    assert_eq!(model.to_dot(), expected);
    Ok(())
}

#[test]
fn a_shared_layer_is_one_box_with_an_edge_from_each_caller() -> anyhow::Result<()> {
    let a = Input::new([8]).name("a");
    let b = Input::new([3, 8]).name("b");
    let shared = Dense::new(4).name("shared").shared();
    let ya = shared.call(&a)?;
    let yb = shared.call(&b)?;
    let doubled = Add::new().call(&[&ya, &ya])?; // one value read twice: one edge
    let model = Model::new_with(&[a, b], &[doubled, yb], BuildOptions::new().device(&backend::native()))?;
    let dot = model.to_dot();
    // In call order: the first call, the Add reading it, then the second call.
    assert_eq!(edges(&dot), [r#""a" -> "shared";"#, r#""shared" -> "add";"#, r#""b" -> "shared";"#]);
    assert_eq!(dot.matches("\"shared\" [label=").count(), 1);
    assert!(
        dot.contains(
            r#""shared (Dense)\nInput shape: (None, 8) | (None, 3, 8)\nOutput shape: (None, 4) | (None, 3, 4)""#
        ),
        "{dot}"
    );
    assert!(dot.contains(r#"Input shape: [(None, 4), (None, 4)]"#), "{dot}");
    Ok(())
}

#[test]
fn a_nested_model_is_one_box_of_its_class() -> anyhow::Result<()> {
    let dev = backend::native();
    let body = Sequential::new().add(Input::new([6])).add(Dense::new(5)).name("body").build_on(&dev)?;
    let x = Input::new([6]).name("x");
    let h = body.call(&x)?;
    let out = Dense::new(2).name("head").call(&h)?;
    let model = Model::new_with(&x, &out, BuildOptions::new().device(&dev))?;
    let dot = model.to_dot();
    assert!(
        dot.contains(r#""body" [label="body (Sequential)\nInput shape: (None, 6)\nOutput shape: (None, 5)"];"#),
        "{dot}"
    );
    assert_eq!(edges(&dot), [r#""x" -> "body";"#, r#""body" -> "head";"#]);
    Ok(())
}

#[test]
fn names_are_quoted_and_escaped() -> anyhow::Result<()> {
    let x = Input::new([2]).name(r#"in "put""#);
    let y = Dense::new(1).name(r"back\slash").call(&x)?;
    let model = Model::new_with(&x, &y, BuildOptions::new().device(&backend::native()).name("my \"model\""))?;
    let dot = model.to_dot();
    assert!(dot.starts_with("digraph \"my \\\"model\\\"\" {\n"), "{dot}");
    assert!(dot.contains(r#""in \"put\"" [label="in \"put\" (InputLayer)\n"#), "{dot}");
    assert!(dot.contains(r#""back\\slash" [label="back\\slash (Dense)\n"#), "{dot}");
    assert_eq!(edges(&dot), [r#""in \"put\"" -> "back\\slash";"#]);
    Ok(())
}

fn small_model() -> anyhow::Result<Model> {
    Ok(Sequential::new().add(Input::new([3])).add(Dense::new(2)).build_on(&backend::native())?)
}

#[test]
fn plot_to_a_dot_path_writes_the_dot_text() -> anyhow::Result<()> {
    let model = small_model()?;
    for name in ["model.dot", "model.GV"] {
        let path = temp(name);
        model.plot(&path)?;
        let text = std::fs::read_to_string(&path)?;
        std::fs::remove_file(&path)?;
        assert_eq!(text, model.to_dot());
    }
    Ok(())
}

#[test]
fn plot_to_an_unknown_extension_names_the_accepted_ones() -> anyhow::Result<()> {
    let model = small_model()?;
    for name in ["model.jpg", "model", "model.svg.txt"] {
        let path = temp(name);
        let err = model.plot(&path).unwrap_err().to_string();
        assert!(err.contains(".dot") && err.contains(".svg") && err.contains(".png"), "{err}");
        assert!(!path.exists());
    }
    Ok(())
}

#[test]
fn plot_into_a_missing_folder_is_an_error() -> anyhow::Result<()> {
    let model = small_model()?;
    let path = temp("no_such_folder").join("model.dot");
    let err = model.plot(&path).unwrap_err().to_string();
    assert!(err.contains("model.dot"), "{err}");
    Ok(())
}

/// With Graphviz installed the SVG is drawn; without it the error says that
/// `dot` is missing and suggests a `.dot` path, and no file appears.
#[test]
fn plot_to_svg_uses_graphviz_or_says_it_is_missing() -> anyhow::Result<()> {
    let model = small_model()?;
    let path = temp("model.svg");
    let graphviz = Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    // CI installs Graphviz and sets this, so the drawing path cannot be skipped there.
    assert!(
        graphviz || std::env::var_os("STRATA_REQUIRE_GRAPHVIZ").is_none(),
        "STRATA_REQUIRE_GRAPHVIZ is set but `dot` is missing"
    );
    let result = model.plot(&path);
    if graphviz {
        result?;
        let svg = std::fs::read_to_string(&path)?;
        std::fs::remove_file(&path)?;
        assert!(svg.contains("<svg") && svg.contains("dense (Dense)"), "{svg}");
    } else {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("`dot` was not found") && err.contains("Graphviz"), "{err}");
        assert!(err.contains("`.dot` path"), "{err}");
        assert!(!path.exists());
    }
    Ok(())
}

/// A Functional model with two inputs, a layer shared by both and two
/// outputs, drawn by Graphviz: every layer is a node of the SVG and every
/// connection an edge (the shared layer once, with both inputs into it).
#[test]
fn a_shared_layer_model_is_drawn_as_svg() -> anyhow::Result<()> {
    let graphviz = Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    if !graphviz {
        assert!(
            std::env::var_os("STRATA_REQUIRE_GRAPHVIZ").is_none(),
            "STRATA_REQUIRE_GRAPHVIZ is set but `dot` is missing"
        );
        eprintln!("Graphviz' dot is not installed: the SVG is not drawn");
        return Ok(());
    }
    let left = Input::new([16]).name("left");
    let right = Input::new([16]).name("right");
    let encoder = Dense::new(8).activation("relu").name("encoder").shared();
    let (l, r) = (encoder.call(&left)?, encoder.call(&right)?);
    let joined = Concatenate::new().name("joined").call(&[&l, &r])?;
    let same = Dense::new(1).activation("sigmoid").name("same").call(&joined)?;
    let distance = Dense::new(1).name("distance").call(&joined)?;
    let model = Model::new_with(&[left, right], &[same, distance], BuildOptions::new().device(&backend::native()))?;
    let path = temp("siamese.svg");
    model.plot(&path)?;
    let svg = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;
    let titles: Vec<&str> = svg.split("<title>").skip(1).filter_map(|t| t.split("</title>").next()).collect();
    let nodes = ["left", "right", "encoder", "joined", "same", "distance"];
    for n in nodes {
        assert!(titles.contains(&n), "node {n} missing from {titles:?}");
    }
    let arrow = |a: &str, b: &str| format!("{a}&#45;&gt;{b}");
    for (a, b) in
        [("left", "encoder"), ("right", "encoder"), ("encoder", "joined"), ("joined", "same"), ("joined", "distance")]
    {
        assert!(titles.contains(&arrow(a, b).as_str()), "edge {a} -> {b} missing from {titles:?}");
    }
    assert!(svg.contains("encoder (Dense)"), "labels carry the class");
    Ok(())
}
