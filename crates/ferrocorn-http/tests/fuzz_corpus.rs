//! The fuzz targets' properties on the stable toolchain: every file of the committed corpus
//! (`fuzz/corpus/<target>/`, including crashes found by cargo-fuzz and kept as regressions) is
//! replayed, then each entry is mutated with a fixed-seed generator. cargo-fuzz explores far
//! more (`scripts/fuzz-smoke`); this keeps the same properties checked on every `cargo test`.
//!
//! `FUZZ_ROUNDS` raises the number of mutations per target (default 20000).

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SPECIAL: &[u8] = b"\r\n\0 \t:;,\"%#?_-\x7f\xff0aF\x0b";

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 => v.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => v.truncate(at),
            4 if at < v.len() => v[at] = rng.next() as u8,
            5 if !other.is_empty() => {
                // Splice in a piece of another corpus entry.
                let from = rng.below(other.len());
                let end = (from + rng.below(32)).min(other.len());
                v.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let end = (at + rng.below(16)).min(v.len());
                let piece = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
        }
    }
    v
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let entries: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!entries.is_empty(), "empty corpus for {target}");
    entries
}

fn run(target: &str, check: fn(&[u8]), seed: u64) -> usize {
    let rounds: usize = std::env::var("FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let entries = corpus(target);
    for e in &entries {
        check(e);
    }
    let mut rng = Rng(seed);
    for _ in 0..rounds {
        let a = &entries[rng.below(entries.len())];
        let b = &entries[rng.below(entries.len())];
        let input = mutate(&mut rng, a, b);
        let caught = std::panic::catch_unwind(|| check(&input));
        if caught.is_err() {
            panic!("{target}: property failed on {input:?}; add it to fuzz/corpus/{target}/");
        }
    }
    entries.len() + rounds
}

#[test]
fn head_corpus_and_mutations() {
    let n = run("head", checks::head, 0x9e37_79b9_7f4a_7c15);
    eprintln!("head: {n} executions");
}

#[test]
fn chunked_corpus_and_mutations() {
    let n = run("chunked", checks::chunked, 0xdead_beef_cafe_f00d);
    eprintln!("chunked: {n} executions");
}

#[test]
fn response_corpus_and_mutations() {
    let n = run("response", checks::response, 0x1234_5678_9abc_def1);
    eprintln!("response: {n} executions");
}

#[test]
fn proxy_corpus_and_mutations() {
    let n = run("proxy", checks::proxy, 0x0f0f_0f0f_1234_4321);
    eprintln!("proxy: {n} executions");
}

#[test]
fn uwsgi_corpus_and_mutations() {
    let n = run("uwsgi", checks::uwsgi, 0x5157_5347_4900_0001);
    eprintln!("uwsgi: {n} executions");
}
