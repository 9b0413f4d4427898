//! One HTTP(S) transfer into a `.part` file that a later call resumes: the bytes already there
//! are asked for no more (`Range`), and a server that ignores the range starts the file again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Bytes received so far and the file's full size when the server says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes in the `.part` file.
    pub done: u64,
    /// The whole file's size, when known.
    pub total: Option<u64>,
}

/// Why a transfer stopped; the `.part` file keeps what arrived.
pub(crate) type Failure = String;

/// Downloads `url` into `part`, continuing after the bytes `part` already holds. Returns when
/// the whole file is there; a dropped connection leaves the received bytes for the next call.
pub(crate) fn download(
    url: &str,
    part: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), Failure> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled transfer fails instead of hanging; what arrived is kept.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("reid/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length: Option<u64> = header("content-length").and_then(|v| v.trim().parse().ok());
    // Before the .part file is opened: a page must not truncate what an earlier call received.
    let page = header("content-type").filter(|t| t.starts_with("text/html"));
    if let Some(kind) = page.filter(|_| matches!(status, 200 | 206)) {
        // A sign-in or warning page instead of the file (a cloud drive's large-file notice).
        return Err(format!("the server sent a web page ({kind}), not the file"));
    }
    let (mut file, start) = match status {
        206 if have > 0 => {
            let range = header("content-range").unwrap_or_default();
            if !range_starts_at(&range, have) {
                return Err(format!(
                    "the server answered a resume from byte {have} with `{range}`"
                ));
            }
            let file = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| format!("{}: {e}", part.display()))?;
            (file, have)
        }
        // The whole file: first transfer, or a server that does not resume.
        200 => (
            File::create(part).map_err(|e| format!("{}: {e}", part.display()))?,
            0,
        ),
        // Everything was already received by an earlier call.
        416 if have > 0 => return Ok(()),
        _ => return Err(format!("HTTP status {status}")),
    };
    let total = length.map(|l| l + start);
    let mut body = response.into_body().into_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut done = start;
    progress(Progress { done, total });
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.sync_all();
                return Err(format!(
                    "the transfer stopped after {done} bytes ({e}); run again to resume"
                ));
            }
        };
        file.write_all(&buffer[..n])
            .map_err(|e| format!("{}: {e}", part.display()))?;
        done += n as u64;
        progress(Progress { done, total });
    }
    file.sync_all()
        .map_err(|e| format!("{}: {e}", part.display()))?;
    match total {
        Some(t) if done != t => Err(format!(
            "the transfer stopped after {done} of {t} bytes; run again to resume"
        )),
        _ => Ok(()),
    }
}

/// Whether a `Content-Range` value (`bytes 100-199/200`) starts at byte `start`.
fn range_starts_at(range: &str, start: u64) -> bool {
    range
        .strip_prefix("bytes ")
        .and_then(|r| r.split('-').next())
        .and_then(|first| first.trim().parse::<u64>().ok())
        == Some(start)
}

/// The direct-download address of a Google Drive file link (`…/uc?id=ID`, `…/file/d/ID/…`,
/// `…/open?id=ID`): Drive answers the plain link of a large file with a virus-scan notice
/// page, the direct address with the file.
pub(crate) fn direct_url(url: &str) -> String {
    let Some(rest) = url
        .strip_prefix("https://drive.google.com/")
        .or_else(|| url.strip_prefix("http://drive.google.com/"))
    else {
        return url.to_string();
    };
    let id = if let Some(after) = rest.strip_prefix("file/d/") {
        after.split(['/', '?']).next()
    } else {
        rest.split_once('?')
            .and_then(|(_, query)| query.split('&').find_map(|pair| pair.strip_prefix("id=")))
    };
    match id.filter(|id| !id.is_empty()) {
        Some(id) => format!(
            "https://drive.usercontent.google.com/download?id={id}&export=download&confirm=t"
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_links_become_direct_downloads() {
        let direct =
            "https://drive.usercontent.google.com/download?id=1LaG1EJp&export=download&confirm=t";
        for link in [
            "https://drive.google.com/uc?id=1LaG1EJp",
            "https://drive.google.com/uc?export=download&id=1LaG1EJp",
            "https://drive.google.com/file/d/1LaG1EJp/view?usp=sharing",
            "https://drive.google.com/open?id=1LaG1EJp",
        ] {
            assert_eq!(direct_url(link), direct, "{link}");
        }
        let other = "https://download.pytorch.org/models/resnet50-19c8e357.pth";
        assert_eq!(direct_url(other), other);
        assert_eq!(
            direct_url("https://drive.google.com/uc?x=1"),
            "https://drive.google.com/uc?x=1"
        );
    }

    #[test]
    fn content_ranges_are_read() {
        assert!(range_starts_at("bytes 100-199/200", 100));
        assert!(!range_starts_at("bytes 0-199/200", 100));
        assert!(!range_starts_at("", 100));
        assert!(!range_starts_at("bytes */200", 100));
    }
}
