//! The committed header is exactly what cbindgen generates from the sources.

use std::path::Path;

const REGENERATE: &str = "regenerate it with `MDBATCH_BLESS_HEADER=1 cargo test -p batch-ffi header` \
     (or cbindgen 0.29.4: `cbindgen --config batch-ffi/cbindgen.toml --crate batch-ffi \
     --output batch-ffi/include/mdbatch.h`) and commit it";

#[test]
fn the_committed_header_matches_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed_path = crate_dir.join("include/mdbatch.h");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let dir = tempfile::tempdir().expect("temp dir");
    let generated_path = dir.path().join("mdbatch.h");
    bindings.write_to_file(&generated_path);
    let generated = std::fs::read_to_string(&generated_path).expect("generated header");

    if std::env::var_os("MDBATCH_BLESS_HEADER").is_some() {
        std::fs::write(&committed_path, &generated).expect("write include/mdbatch.h");
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "batch-ffi/include/mdbatch.h is out of date (first difference at line {first}: \
             committed {:?}, generated {:?}); {REGENERATE}",
            committed.lines().nth(first - 1).unwrap_or("<end>"),
            generated.lines().nth(first - 1).unwrap_or("<end>"),
        );
    }
}
