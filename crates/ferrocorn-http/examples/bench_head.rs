//! Rough timing of `parse_request_head` on a typical browser GET and of the chunked decoder.
//! Run with `cargo run --release -p ferrocorn-http --example bench_head`.

use ferrocorn_http::{ChunkedDecoder, ParseOptions, Parsed, parse_request_head};
use std::hint::black_box;
use std::time::Instant;

const GET: &[u8] = b"GET /static/app.js?v=1234 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\r\n";

fn main() {
    if std::env::var_os("BASELINE").is_some() {
        httparse_baseline();
    }
    let opts = ParseOptions::default();
    let n: u32 = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..n {
            match parse_request_head(black_box(GET), &opts) {
                Ok(Parsed::Complete { head, consumed }) => {
                    black_box((head, consumed));
                }
                _ => unreachable!(),
            }
        }
        let per = t.elapsed().as_nanos() as f64 / f64::from(n);
        println!("parse_request_head: {} bytes, {per:.0} ns/request", GET.len());
    }
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'x'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut out = Vec::with_capacity(70_000);
    let t = Instant::now();
    let rounds: usize = std::env::var("R").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    for _ in 0..rounds {
        out.clear();
        let mut d = ChunkedDecoder::new();
        black_box(d.decode(black_box(&body), &mut out).ok());
    }
    let secs = t.elapsed().as_secs_f64();
    println!("chunked decode: {:.2} GB/s", (body.len() * rounds) as f64 / secs / 1e9);
}

#[allow(dead_code)]
fn httparse_baseline() {
    let n = 1_000_000;
    let t = Instant::now();
    for _ in 0..n {
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Request::new(&mut hs);
        black_box(r.parse(black_box(GET)).ok());
        black_box(&r);
    }
    println!("httparse baseline (borrowing, no copies): {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
    let t = Instant::now();
    for _ in 0..n {
        let v: Vec<Box<[u8]>> = (0..21).map(|i| Box::from(&GET[i..i + 10])).collect();
        black_box(v);
    }
    println!("21 small allocations: {:.0} ns", t.elapsed().as_nanos() as f64 / n as f64);
}
