//! Just enough HTTP/1.1 for a keep-alive load generator: format a GET, and find where a response in a
//! byte buffer ends. Bodies are skipped, never decoded, so the client spends its CPU on waiting.

/// Headers larger than this are treated as a broken server rather than buffered forever.
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Bytes from the start of the buffer to the end of the body.
    pub len: usize,
    /// The server asked to close the connection after this response.
    pub close: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed status line")]
    StatusLine,
    #[error("malformed header line")]
    Header,
    #[error("bad content-length")]
    ContentLength,
    #[error("bad chunk size line")]
    Chunk,
    #[error("response has neither content-length nor chunked encoding")]
    NoLength,
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
}

pub fn get_request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n").into_bytes()
}

/// A request with any method, an optional bearer key and an optional JSON body.
pub fn request(method: &str, host: &str, path: &str, key: Option<&str>, body: &str) -> Vec<u8> {
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    let content = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{auth}{content}\r\n{body}"
    )
    .into_bytes()
}

/// `Ok(None)` while `buf` does not yet hold a whole response; otherwise its status and length.
pub fn parse_response(buf: &[u8]) -> Result<Option<Response>, ParseError> {
    let Some(head_len) = find(buf, b"\r\n\r\n").map(|i| i + 4) else {
        return if buf.len() > MAX_HEAD {
            Err(ParseError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..head_len - 4]).map_err(|_| ParseError::Header)?;
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or(""))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut close = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(ParseError::Header)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| ParseError::ContentLength)?;
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    let body_end = if chunked {
        match chunked_end(buf, head_len)? {
            Some(end) => end,
            None => return Ok(None),
        }
    } else if let Some(n) = content_length {
        let end = head_len + n;
        if buf.len() < end {
            return Ok(None);
        }
        end
    } else if status < 200 || status == 204 || status == 304 {
        head_len
    } else {
        return Err(ParseError::NoLength);
    };
    Ok(Some(Response {
        status,
        len: body_end,
        close,
    }))
}

fn parse_status_line(line: &str) -> Result<u16, ParseError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(ParseError::StatusLine);
    }
    let code = parts.next().ok_or(ParseError::StatusLine)?;
    if code.len() != 3 {
        return Err(ParseError::StatusLine);
    }
    code.parse().map_err(|_| ParseError::StatusLine)
}

/// End of a chunked body that starts at `at`, trailers included; `None` when incomplete.
fn chunked_end(buf: &[u8], mut at: usize) -> Result<Option<usize>, ParseError> {
    loop {
        let Some(line_len) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[at..at + line_len]).map_err(|_| ParseError::Chunk)?;
        let hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| ParseError::Chunk)?;
        at += line_len + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let Some(n) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += n + 2;
                if n == 0 {
                    return Ok(Some(at));
                }
            }
        }
        let chunk_end = at.checked_add(size).ok_or(ParseError::Chunk)?;
        if buf.len() < chunk_end + 2 {
            return Ok(None);
        }
        if &buf[chunk_end..chunk_end + 2] != b"\r\n" {
            return Err(ParseError::Chunk);
        }
        at = chunk_end + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}";

    #[test]
    fn content_length_response_is_found_whole() {
        let r = parse_response(OK).unwrap().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.len, OK.len());
        assert!(!r.close);
    }

    #[test]
    fn partial_responses_ask_for_more() {
        for cut in 0..OK.len() {
            assert_eq!(parse_response(&OK[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn pipelined_bytes_after_the_body_are_not_consumed() {
        let mut two = OK.to_vec();
        two.extend_from_slice(OK);
        assert_eq!(parse_response(&two).unwrap().unwrap().len, OK.len());
    }

    #[test]
    fn chunked_body_with_extension_and_trailer() {
        let body =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
        let r = parse_response(body).unwrap().unwrap();
        assert_eq!((r.status, r.len, r.close), (404, body.len(), true));
        for cut in 0..body.len() {
            assert_eq!(parse_response(&body[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn bodiless_statuses_need_no_length() {
        let r = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.len), (204, 27));
    }

    #[test]
    fn malformed_responses_are_errors() {
        let cases: [(&[u8], ParseError); 5] = [
            (b"HTTP/2 200 OK\r\n\r\n", ParseError::StatusLine),
            (b"HTTP/1.1 2000 OK\r\n\r\n", ParseError::StatusLine),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", ParseError::Header),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                ParseError::ContentLength,
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", ParseError::NoLength),
        ];
        for (input, want) in cases {
            assert_eq!(parse_response(input), Err(want));
        }
        let bad_chunk = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse_response(bad_chunk), Err(ParseError::Chunk));
        assert_eq!(
            parse_response(&vec![b'a'; MAX_HEAD + 1]),
            Err(ParseError::HeadTooLarge)
        );
    }

    proptest! {
        /// Any body, split into any chunks, parses to exactly the bytes written.
        #[test]
        fn chunked_bodies_of_any_split_parse_to_their_length(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(1usize..50, 0..10),
        ) {
            let mut wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            let mut rest = body.as_slice();
            for cut in cuts {
                let n = cut.min(rest.len());
                if n == 0 { break; }
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            if !rest.is_empty() {
                wire.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
                wire.extend_from_slice(rest);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let r = parse_response(&wire).unwrap().unwrap();
            prop_assert_eq!(r.len, wire.len());
            prop_assert_eq!(parse_response(&wire[..wire.len() - 1]).unwrap(), None);
        }
    }
}
