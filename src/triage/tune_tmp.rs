//! Temporary tuning harness (removed before delivery).
#[test]
#[ignore]
fn dump_features() {
    use std::io::Write;
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/clinc150/clinc150_train_val.json"
    ));
    let (index, ins, oos) = super::eval::load_clinc150(path).unwrap();
    let mut out = std::fs::File::create("/tmp/tune/features.csv").unwrap();
    for (text, label) in ins.iter().chain(&oos) {
        let r = index.retrieve(text);
        let pred = r
            .best
            .map(|e| index.entries()[e].id.clone())
            .unwrap_or_default();
        let y = if label == "oos" {
            2
        } else if pred == *label {
            1
        } else {
            0
        };
        writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            y,
            r.self_ratio,
            r.margin,
            r.vote,
            r.confidence,
            label,
            pred,
            text.replace(",", " ")
        )
        .unwrap();
    }
}
