//! Figures of `sensitivity` and `discover`: drawn on any plotters backend,
//! encoded as PNG (with the embedded font, see [`super::font`]) or SVG by the
//! file's extension, and written whole through a `.partial` file.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::font::{self, TextBitmap};
use crate::InputError;
use crate::output::partial_path;

pub use super::font::FAMILY;

/// Image size of the figures.
pub const WIDTH: u32 = 1400;

/// A figure that can draw itself on a drawing area of any backend.
pub trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static;

    /// Height for [`WIDTH`].
    fn height(&self) -> u32 {
        900
    }
}

/// The figure's bytes as the extension of `path` says (.png or .svg).
pub fn render(path: &Path, figure: &impl Figure) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (WIDTH, figure.height());
    font::register();
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => {
            let mut text = String::new();
            figure.draw(SVGBackend::with_string(&mut text, (w, h)).into_drawing_area())?;
            Ok(text.into_bytes())
        }
        Some("png") => {
            let mut rgb = vec![0; w as usize * h as usize * 3];
            figure.draw(TextBitmap::new(&mut rgb, (w, h)).into_drawing_area())?;
            super::plot::encode_png(&rgb, w, h)
        }
        _ => Err(InputError(format!("--plot: {} must end in .png or .svg", path.display())).into()),
    }
}

/// Writes `bytes` to `path` through `<path>.partial` (folders created).
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| InputError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let partial = partial_path(path);
    std::fs::write(&partial, bytes).map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
    std::fs::rename(&partial, path).map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}
