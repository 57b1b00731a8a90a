//! Embeds ferroban's own configuration tree (`config/` at the workspace root, without its
//! `samples/`) into the binary: `$OUT_DIR/embedded_config.rs` holds one `(relative path,
//! contents)` pair per file, read by `ferroban::defaults`.

use std::path::{Path, PathBuf};

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let rel = p
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if p.is_dir() {
            if rel == "samples" {
                continue;
            }
            collect(root, &p, out);
        } else if [".conf", ".local"].iter().any(|s| rel.ends_with(s)) {
            out.push((rel, p));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../config");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    for (_, p) in &files {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let mut code = String::from(
        "/// ferroban's embedded configuration: (path relative to the tree, contents).\n\
         pub static FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, p) in &files {
        let abs = p.canonicalize().expect("readable config file");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded_config.rs");
    std::fs::write(out, code).expect("write embedded_config.rs");
}
