//! Cheap in-tree fuzzing: mutate known requests (bit flips, CR/LF/NUL/space insertions,
//! truncations, duplications) with a fixed-seed generator and check the parser's invariants:
//! no panic, `Partial` only for true prefixes, the same answer however the input is split,
//! and `consumed` never past the input. A real fuzzer (cargo-fuzz) should run the same
//! properties; this keeps them checked on every `cargo test`.

use ferrocorn_http::{ChunkedDecoder, HttpError, ParseOptions, Parsed, parse_proxy_header, parse_request_head};

const ROUNDS: usize = 4000;

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
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&[u8]] = &[
    b"GET /a?b=c#d HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;e=\"q\"\r\nhello\r\n0\r\nT: v\r\n\r\n",
    b"PUT /u HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
    b"\r\nOPTIONS * HTTP/1.1\r\nA:\r\n b\r\n\r\n",
    b"CONNECT [::1]:443 HTTP/1.1\r\nX_Y: z\r\n\r\n",
    b"POST /e HTTP/1.1\r\nTransfer-Encoding: identity ,chunked\r\n\r\n3 ; a = \"q\\\"x\";b\r\nabc\r\n0;z=1\r\n\r\n",
    b"POST /l HTTP/2.0\r\nTransfer-Encoding: ,chunked\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET http://h/p HTTP/1.1\r\n\r\n",
];
const SPECIAL: &[u8] = b"\r\n\0 \t:;,\"%#?_-\x7f\xff0aF";

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 => v.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => v.truncate(at),
            _ => {
                let end = (at + rng.below(16)).min(v.len());
                let piece = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
        }
    }
    v
}

fn outcome(r: Result<Parsed, HttpError>) -> Result<Option<usize>, HttpError> {
    r.map(|p| match p {
        Parsed::Complete { consumed, .. } => Some(consumed),
        Parsed::Partial => None,
    })
}

#[test]
fn mutated_requests_keep_the_invariants() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let option_sets = [
        ParseOptions::default(),
        ParseOptions {
            permit_obsolete_folding: true,
            strip_header_spaces: true,
            permit_unconventional_http_method: true,
            permit_unconventional_http_version: true,
            casefold_http_method: true,
            header_map: ferrocorn_http::HeaderMap::Dangerous,
            limit_request_line: 40,
            limit_request_fields: 3,
            limit_request_field_size: 30,
            forwarder_headers: vec![b"SCRIPT_NAME".to_vec().into_boxed_slice()],
        },
    ];
    for round in 0..ROUNDS {
        let seed = SEEDS[round % SEEDS.len()];
        let input = mutate(&mut rng, seed);
        let opts = &option_sets[round % 2];
        let _ = parse_proxy_header(&input);
        let whole = outcome(parse_request_head(&input, opts));
        if let Ok(Some(n)) = whole {
            assert!(n <= input.len());
            // Every shorter prefix of a complete head is Partial or an error.
            for cut in 0..n {
                let p = outcome(parse_request_head(&input[..cut], opts));
                assert!(matches!(p, Ok(None) | Err(_)), "prefix {cut} of {input:?}: {p:?}");
            }
            // Extra bytes after the head do not change the answer.
            let mut more = input.clone();
            more.extend_from_slice(b"GARBAGE\r\n");
            assert_eq!(outcome(parse_request_head(&more, opts)), whole);
        }
        if let Ok(None) = whole {
            // A Partial input never becomes an error by being cut shorter... except through
            // limits it cannot violate at shorter lengths; check prefixes are Partial too.
            for cut in 0..input.len() {
                assert_eq!(outcome(parse_request_head(&input[..cut], opts)), Ok(None), "{input:?} at {cut}");
            }
        }

        // Chunked decoder: whole vs split at a random point agree.
        let body_at = input.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| p + 4);
        let body = &input[body_at..];
        let mut a = ChunkedDecoder::new();
        let mut out_a = Vec::new();
        let ra = a.decode(body, &mut out_a);
        let cut = rng.below(body.len() + 1);
        let mut b = ChunkedDecoder::new();
        let mut out_b = Vec::new();
        let rb = b
            .decode(&body[..cut], &mut out_b)
            .and_then(|n| if n == cut { b.decode(&body[cut..], &mut out_b).map(|m| n + m) } else { Ok(n) });
        assert_eq!(ra, rb, "chunked {body:?} cut {cut}");
        if ra.is_ok() {
            assert_eq!((out_a, a.is_done()), (out_b, b.is_done()));
        }
    }
}
