//! Progress bars for long steps (hidden with `--quiet` or when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar of `len` steps with a message, or a hidden one.
pub fn bar(len: u64, message: impl Into<String>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:<32} [{bar:30}] {pos}/{len} {elapsed_precise}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}
