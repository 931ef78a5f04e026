//! The `rumour` binary.

fn main() {
    eprintln!("rumour: the node and its demo are not built yet; see README.md");
    std::process::exit(2);
}
