//! Links the bootstrap as a position-dependent executable.
//!
//! A position-independent executable of this size (every step, the AWS SDK, the Wasm runtime)
//! carries ~88,000 relative relocations: at each cold start the loader reads their 2 MiB table
//! and writes ~1 MiB of pointers before `main`, which was most of the bootstrap's extra init time
//! and memory over a bare `lambda_runtime` (bench/run). Linked at a fixed address, the linker
//! resolves them once. The objects stay position-independent (only the link changes); the shared
//! libraries, stack and heap keep their address randomization, as in Go's default Linux build,
//! which Lambda's Go functions run. `-no-pie` comes after rustc's own `-pie`, and the last wins.
fn main() {
    // Cargo reruns a build script when its source changes; otherwise only the target decides
    // (bench/hello-lambda runs this same file, so a path to watch would not resolve there).
    println!("cargo:rerun-if-env-changed=CARGO_CFG_TARGET_OS");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
