//! The `rust-cluster-kernel` binary.

fn main() {
    // Must come first: the binary re-runs itself as evcxr's runtime child.
    evcxr::runtime_hook();
}
