//! A small HTTP/1.1 file server on the loopback address for the download tests: serves fixed
//! files by path, honours `Range: bytes=N-`, can drop the connection part-way through a file's
//! first transfer, and records every request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One file the server holds.
#[derive(Clone)]
pub struct Served {
    /// The file's bytes.
    pub body: Vec<u8>,
    /// The first transfer of this file stops after this many bytes (the connection closes).
    pub cut_first_at: Option<usize>,
}

/// A request the server answered: path and `Range` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

/// The running server (its thread ends with the test process).
pub struct FileServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FileServer {
    /// Serves `files` (path without the leading `/` → file).
    pub fn start(files: Vec<(&str, Served)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let files: HashMap<String, Served> =
            files.into_iter().map(|(p, s)| (p.to_string(), s)).collect();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // One request per connection; a failed answer is the client's business.
                let _ = answer(stream, &files, &log);
            }
        });
        Self { base, seen }
    }

    /// The requests answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(
    stream: TcpStream,
    files: &HashMap<String, Served>,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let first = {
        let mut seen = seen.lock().unwrap();
        let first = !seen.iter().any(|s| s.path == path);
        seen.push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        first
    };
    let mut out = stream;
    let Some(file) = files.get(&path) else {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let len = file.body.len();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, start) = match start {
        Some(s) if s >= len => {
            return out.write_all(
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
        }
        Some(s) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}",
                len - 1
            ),
            s,
        ),
        None => ("200 OK".to_string(), 0),
    };
    out.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            len - start
        )
        .as_bytes(),
    )?;
    let end = match file.cut_first_at {
        Some(cut) if first => cut.clamp(start, len),
        _ => len,
    };
    out.write_all(&file.body[start..end])?;
    out.flush()?;
    out.shutdown(std::net::Shutdown::Both)
}
