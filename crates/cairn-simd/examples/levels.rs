//! Prints the SIMD levels this CPU can execute, one per line, narrowest first (`.ci/run` runs the
//! test suite once per level), then nothing else.

fn main() {
    for level in cairn_simd::supported() {
        println!("{level}");
    }
}
