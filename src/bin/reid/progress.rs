//! Terminal progress output shared by the long-running commands.

use std::io::Write;

/// Redraws a progress bar on stderr: `[####    ] done/total suffix`.
pub fn draw_progress(done: usize, total: usize, suffix: &str) {
    let width = 40 * done.min(total) / total.max(1);
    eprint!(
        "\r[{}{}] {done}/{total} {suffix}",
        "#".repeat(width),
        " ".repeat(40 - width)
    );
    let _ = std::io::stderr().flush();
}
