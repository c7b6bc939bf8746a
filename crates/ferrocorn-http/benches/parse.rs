//! Micro-benchmark of the per-request work in this crate: parsing request heads of the shapes
//! the benchmark suite sends, planning and writing a response head, and decoding a chunked body.
//! A plain timing loop (stable Rust, no harness crate): each case runs 7 rounds and prints the
//! median, so one descheduled round on a busy machine does not move the figure.
//!
//!     cargo bench -p ferrocorn-http --bench parse            (ITERS=200000 to change the count)

use ferrocorn_http::response::{plan, write_head};
use ferrocorn_http::{ChunkedDecoder, ParseOptions, Parsed, http_date, parse_request_head};
use std::hint::black_box;
use std::time::Instant;

/// What wrk sends for a plain GET: the smallest realistic head.
const WRK_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";

/// A browser navigation: eight fields, a query string, about 400 bytes.
const BROWSER_GET: &[u8] = b"GET /static/app.js?v=1234&lang=en HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://www.example.com/\r\n\
Cookie: session=4f2a9c0e7b1d; theme=dark; consent=1\r\n\
Connection: keep-alive\r\n\r\n";

/// The head of the suite's 1 MiB POST.
const POST: &[u8] = b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\
Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n";

const ROUNDS: usize = 7;

fn iters() -> u32 {
    std::env::var("ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300_000)
}

/// Runs `f` `n` times per round and returns the median round's nanoseconds per call.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn parse(buf: &[u8], opts: &ParseOptions) {
    match parse_request_head(black_box(buf), opts) {
        Ok(Parsed::Complete { head, consumed }) => {
            black_box((head, consumed));
        }
        other => panic!("benchmark input did not parse: {other:?}"),
    }
}

fn main() {
    let n = iters();
    let opts = ParseOptions::default();
    for (name, buf) in [("wrk GET", WRK_GET), ("browser GET", BROWSER_GET), ("POST head", POST)] {
        let ns = time(n, || parse(buf, &opts));
        println!("parse_request_head {name:12} {:4} bytes  {ns:7.0} ns  {:6.0} MB/s", buf.len(), buf.len() as f64 / ns * 1e3);
    }

    let head = match parse_request_head(WRK_GET, &opts) {
        Ok(Parsed::Complete { head, .. }) => head,
        other => panic!("benchmark input did not parse: {other:?}"),
    };
    let headers: [(&[u8], &[u8]); 2] = [(b"Content-Type", b"text/plain"), (b"Content-Length", b"13")];
    let date = http_date(1_700_000_000);
    let mut out = Vec::with_capacity(512);
    let ns = time(n, || {
        out.clear();
        let p = plan(black_box(&head), 200, &headers, true);
        write_head(&mut out, head.version, b"200 OK", &headers, &p, &date, b"ferrocorn");
        black_box(&out);
    });
    println!("plan + write_head  hello response   {:4} bytes  {ns:7.0} ns", out.len());
    let ns = time(n, || {
        black_box(http_date(black_box(1_700_000_000)));
    });
    println!("http_date                                   {ns:7.0} ns");

    let mut body = Vec::new();
    for _ in 0..100 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'x'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut decoded = Vec::with_capacity(128 * 1024);
    let ns = time((n / 100).max(10), || {
        decoded.clear();
        let mut d = ChunkedDecoder::new();
        black_box(d.decode(black_box(&body), &mut decoded).ok());
    });
    println!("chunked decode 100 x 1 KiB        {:6} bytes  {ns:7.0} ns  {:6.0} MB/s", body.len(), body.len() as f64 / ns * 1e3);
}
