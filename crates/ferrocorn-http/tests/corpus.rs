//! Replays the HTTP conformance corpus (converted from Gunicorn 27's request corpus) through
//! the parser: every valid case whole, split at every offset and byte by byte; every invalid
//! case must be refused (by the head parser, the PROXY parser, the chunked decoder, or by the
//! connection ending in the middle of a request).
//!
//! The corpus lives outside the repository, in the shared kit that tests/test_conformance.py
//! runs too, found the same way: `$FERROCORN_SHARED/conformance/cases`, else `shared/` beside
//! the clone (where CI puts it). A missing or empty corpus fails the test: passing with no case
//! read would look like conformance. `FERROCORN_SKIP_CONFORMANCE=<reason>` opts out explicitly
//! (the reason is printed), for a checkout without the kit.

use base64::Engine;
use ferrocorn_http::{
    ChunkedDecoder, Framing, HeaderMap, HttpError, ParseOptions, Parsed, ProxyParsed, RequestHead, Version, parse_proxy_header,
    parse_request_head,
};
use serde_json::Value;
use std::path::PathBuf;

/// One request as the corpus describes it.
#[derive(Debug, PartialEq, Eq)]
struct Req {
    method: String,
    raw: Vec<u8>,
    path: Vec<u8>,
    query: Vec<u8>,
    fragment: Vec<u8>,
    version: Version,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

impl Req {
    fn from_head(head: RequestHead, body: Vec<u8>) -> Req {
        Req {
            method: head.method.to_string(),
            raw: head.target.to_vec(),
            path: head.path.to_vec(),
            query: head.query.to_vec(),
            fragment: head.fragment.to_vec(),
            version: head.version,
            // The corpus lists names as they appear in the environ: uppercased.
            headers: head.headers.iter().map(|h| (h.name.to_ascii_uppercase(), h.value.to_vec())).collect(),
            body,
        }
    }
}

/// What a simulated connection is doing with its buffered bytes.
enum State {
    Proxy,
    Head,
    Length {
        head: RequestHead,
        remaining: u64,
        body: Vec<u8>,
    },
    Chunked {
        head: RequestHead,
        decoder: ChunkedDecoder,
        body: Vec<u8>,
    },
    /// The last request did not allow keep-alive: anything after it is never read.
    Closed,
}

/// A connection fed in pieces, like a worker reading from a socket.
struct Conn {
    opts: ParseOptions,
    buf: Vec<u8>,
    state: State,
    reqs: Vec<Req>,
    /// Most bytes a `Partial` head may leave buffered, when the limits are explicit.
    head_bound: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Http(HttpError),
    /// The input ended in the middle of a request.
    Incomplete,
}

impl Conn {
    fn new(opts: ParseOptions, proxy: bool) -> Conn {
        let head_bound = (opts.limit_request_line > 0 && opts.limit_request_field_size > 0 && opts.limit_request_fields > 0)
            .then(|| 2 + opts.limit_request_line + 2 + opts.limit_request_fields * (opts.limit_request_field_size + 2) + 2);
        Conn { opts, buf: Vec::new(), state: if proxy { State::Proxy } else { State::Head }, reqs: Vec::new(), head_bound }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), HttpError> {
        self.buf.extend_from_slice(data);
        loop {
            match std::mem::replace(&mut self.state, State::Closed) {
                State::Closed => return Ok(()),
                State::Proxy => match parse_proxy_header(&self.buf)? {
                    ProxyParsed::Complete { consumed, .. } => {
                        self.buf.drain(..consumed);
                        self.state = State::Head;
                    }
                    ProxyParsed::NotProxy => self.state = State::Head,
                    ProxyParsed::Partial => {
                        self.state = State::Proxy;
                        return Ok(());
                    }
                },
                State::Head => {
                    if self.buf.is_empty() {
                        self.state = State::Head;
                        return Ok(());
                    }
                    match parse_request_head(&self.buf, &self.opts)? {
                        Parsed::Partial => {
                            if let Some(bound) = self.head_bound {
                                assert!(self.buf.len() <= bound, "Partial with {} bytes buffered", self.buf.len());
                            }
                            self.state = State::Head;
                            return Ok(());
                        }
                        Parsed::Complete { head, consumed } => {
                            self.buf.drain(..consumed);
                            match head.framing {
                                Framing::None => self.finish(head, Vec::new()),
                                Framing::Length(n) => self.state = State::Length { head, remaining: n, body: Vec::new() },
                                Framing::Chunked => {
                                    self.state = State::Chunked { head, decoder: ChunkedDecoder::new(), body: Vec::new() }
                                }
                            }
                        }
                    }
                }
                State::Length { head, mut remaining, mut body } => {
                    let n = (self.buf.len() as u64).min(remaining) as usize;
                    body.extend(self.buf.drain(..n));
                    remaining -= n as u64;
                    if remaining == 0 {
                        self.finish(head, body);
                    } else {
                        self.state = State::Length { head, remaining, body };
                        return Ok(());
                    }
                }
                State::Chunked { head, mut decoder, mut body } => {
                    let n = decoder.decode(&self.buf, &mut body)?;
                    self.buf.drain(..n);
                    if decoder.is_done() {
                        self.finish(head, body);
                    } else {
                        assert!(self.buf.is_empty(), "decoder left input unconsumed before the end");
                        self.state = State::Chunked { head, decoder, body };
                        return Ok(());
                    }
                }
            }
        }
    }

    fn finish(&mut self, head: RequestHead, body: Vec<u8>) {
        let keep_alive = head.keep_alive;
        self.reqs.push(Req::from_head(head, body));
        self.state = if keep_alive { State::Head } else { State::Closed };
    }

    fn end(self) -> Result<Vec<Req>, Refusal> {
        match self.state {
            State::Closed => Ok(self.reqs),
            State::Head if self.buf.is_empty() => Ok(self.reqs),
            _ => Err(Refusal::Incomplete),
        }
    }
}

/// Feeds `input` in the given pieces.
fn run(input: &[u8], cuts: &[usize], opts: &ParseOptions, proxy: bool) -> Result<Vec<Req>, Refusal> {
    let mut conn = Conn::new(opts.clone(), proxy);
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        conn.feed(&input[from..cut]).map_err(Refusal::Http)?;
        from = cut;
    }
    conn.end()
}

fn latin1(v: &Value) -> Vec<u8> {
    v.as_str().unwrap_or_default().chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
}

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).expect("corpus base64")
}

fn expected(e: &Value) -> Req {
    let uri = &e["uri"];
    let version = match (e["version"][0].as_u64(), e["version"][1].as_u64()) {
        (Some(1), Some(0)) => Version::Http10,
        _ => Version::Http11,
    };
    Req {
        method: e["method"].as_str().unwrap_or_default().to_string(),
        raw: latin1(&uri["raw"]),
        path: latin1(&uri["path"]),
        query: latin1(&uri["query"]),
        fragment: latin1(&uri["fragment"]),
        version,
        headers: e["headers"].as_array().into_iter().flatten().map(|h| (latin1(&h[0]), latin1(&h[1]))).collect(),
        body: b64(&e["body_b64"]),
    }
}

/// Maps the case's Gunicorn settings to options; `Err` names a setting handled elsewhere.
fn options(settings: &Value) -> Result<(ParseOptions, bool), String> {
    let mut o = ParseOptions::default();
    let mut proxy = false;
    for (k, v) in settings.as_object().into_iter().flatten() {
        let n = || v.as_u64().unwrap_or(0) as usize;
        let b = || v.as_bool().unwrap_or(false);
        match k.as_str() {
            "limit_request_line" => o.limit_request_line = n(),
            "limit_request_fields" => o.limit_request_fields = n(),
            "limit_request_field_size" => o.limit_request_field_size = n(),
            "permit_obsolete_folding" => o.permit_obsolete_folding = b(),
            "strip_header_spaces" => o.strip_header_spaces = b(),
            "permit_unconventional_http_method" => o.permit_unconventional_http_method = b(),
            "casefold_http_method" => o.casefold_http_method = b(),
            "header_map" => {
                o.header_map = match v.as_str() {
                    Some("refuse") => HeaderMap::Refuse,
                    Some("dangerous") => HeaderMap::Dangerous,
                    _ => HeaderMap::Drop,
                }
            }
            "proxy_protocol" => proxy = b(),
            other => return Err(format!("setting {other} is handled in the WSGI layer")),
        }
    }
    Ok((o, proxy))
}

/// Split plans: whole, every offset (or a stride for big inputs), byte by byte.
fn plans(len: usize) -> Vec<Vec<usize>> {
    let mut p = vec![vec![]];
    let step = if len <= 4096 { 1 } else { len / 257 + 1 };
    p.extend((0..=len).step_by(step).map(|c| vec![c]));
    p.push((1..len).collect());
    p
}

/// Where the corpus is: the variable tests/test_conformance.py reads, else its default.
fn cases_dir() -> PathBuf {
    let shared = std::env::var_os("FERROCORN_SHARED")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("conformance/cases")
}

#[test]
fn conformance_corpus() {
    let dir = cases_dir();
    if let Some(reason) = std::env::var_os("FERROCORN_SKIP_CONFORMANCE").filter(|r| !r.is_empty()) {
        // libtest has no runtime "skipped" and hides a passing test's output without
        // --nocapture: that is why skipping takes an explicit, named opt-out, never a guess.
        eprintln!("conformance corpus SKIPPED (FERROCORN_SKIP_CONFORMANCE={})", reason.to_string_lossy());
        return;
    }
    assert!(
        dir.is_dir(),
        "conformance corpus not found at {}: set FERROCORN_SHARED to the shared kit's directory (the one \
         holding conformance/), or FERROCORN_SKIP_CONFORMANCE=<reason> to skip it explicitly",
        dir.display()
    );
    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for kind in ["valid", "invalid"] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(kind))
            .expect("read corpus dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let name = format!("{kind}/{}", file.file_stem().unwrap_or_default().to_string_lossy());
            let case: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read case")).expect("json");
            if let Some(why) = case.get("skip") {
                skipped.push(format!("{name}: {why}"));
                continue;
            }
            let (opts, proxy) = match options(&case["settings"]) {
                Ok(o) => o,
                Err(why) => {
                    skipped.push(format!("{name}: {why}"));
                    continue;
                }
            };
            let input = b64(&case["request_b64"]);
            let outcome = if kind == "valid" {
                let want: Vec<Req> = case["expect"].as_array().into_iter().flatten().map(expected).collect();
                plans(input.len()).iter().find_map(|cuts| match run(&input, cuts, &opts, proxy) {
                    Ok(got) if got == want => None,
                    Ok(got) => Some(format!("cuts {:?}: got {got:?}\nwant {want:?}", &cuts[..cuts.len().min(3)])),
                    Err(e) => Some(format!("cuts {:?}: refused: {e:?}", &cuts[..cuts.len().min(3)])),
                })
            } else {
                let whole = run(&input, &[], &opts, proxy);
                let bytewise = run(&input, &(1..input.len()).collect::<Vec<_>>(), &opts, proxy);
                if std::env::var_os("FERROCORN_CORPUS_VERBOSE").is_some() {
                    eprintln!("  {name}: {whole:?} (Gunicorn: {})", case["expect_error"]);
                }
                match (whole, bytewise) {
                    (Err(a), Err(b)) if a == b => None,
                    (Err(a), Err(b)) => Some(format!("whole refused with {a:?}, byte by byte with {b:?}")),
                    (Ok(r), _) | (_, Ok(r)) => Some(format!("accepted: {r:?}")),
                }
            };
            match outcome {
                None => passed.push(name),
                Some(why) => failed.push(format!("{name}: {why}")),
            }
        }
    }
    eprintln!("corpus: {} passed, {} failed, {} skipped", passed.len(), failed.len(), skipped.len());
    // An empty or misplaced cases directory must not pass as "0 failed".
    assert!(!passed.is_empty(), "no conformance case was run from {}", dir.display());
    for s in &skipped {
        eprintln!("  skipped {s}");
    }
    for f in &failed {
        eprintln!("  FAILED {f}");
    }
    assert!(failed.is_empty(), "{} corpus cases failed", failed.len());
}
