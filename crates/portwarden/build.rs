//! Build-time options of the `portwarden` binary.
//!
//! `PORTWARDEN_LINK_NO_PIE=1` links the binary as a position-dependent executable. A PIE
//! binary of this size carries about 36,000 relative relocations that the dynamic loader
//! applies at every start, copying some 150 pages on write: half of the page faults and
//! half of the CPU time of a one-shot `portwarden check tcp` (docs/benchmarks.md,
//! `bench check-start`). Without PIE they are resolved at link time, at the price of
//! address-space randomisation for the executable's own code and data, which is why it is
//! a packager's choice and not the default.

fn main() {
    println!("cargo:rerun-if-env-changed=PORTWARDEN_LINK_NO_PIE");
    let wanted = std::env::var("PORTWARDEN_LINK_NO_PIE").is_ok_and(|v| v == "1");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if wanted && linux {
        // rustc passes -pie first; the linker driver takes the last of the two.
        println!("cargo:rustc-link-arg-bin=portwarden=-no-pie");
    }
}
