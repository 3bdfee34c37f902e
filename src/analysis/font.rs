//! Text for figures without system fonts: DejaVu Sans is embedded in the
//! binary and registered with plotters (which measures text with it), and
//! bitmap text is drawn here, glyph by glyph.
//!
//! plotters 0.3.7 can draw text with an embedded font (its `ab_glyph`
//! feature), but places each glyph by its ink box rather than its pen
//! position and baseline, which jumbles spacing ("0.0681 3") and lifts
//! punctuation. [`TextBitmap`] wraps its bitmap backend and lays the glyphs
//! out properly; SVG text is left to the viewer's fonts.

use std::sync::Once;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::prelude::{BitMapBackend, DrawingBackend};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontStyle};

/// DejaVu Sans 2.37 from Debian's fonts-dejavu-core (Bitstream Vera licence,
/// `assets/fonts/DejaVuSans-LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name figures ask for (plotters' default family).
pub const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters as [`FAMILY`], once.
pub fn register() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        let registered = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
        assert!(registered.is_ok(), "the embedded font is a valid TrueType font");
    });
}

/// plotters' bitmap backend, drawing text with the embedded font.
pub struct TextBitmap<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

impl<'a> TextBitmap<'a> {
    /// Draws into `rgb`, an 8-bit RGB buffer of `size` pixels.
    pub fn new(rgb: &'a mut [u8], size: (u32, u32)) -> TextBitmap<'a> {
        let font = FontRef::try_from_slice(FONT).expect("the embedded font is a valid TrueType font");
        TextBitmap { inner: BitMapBackend::with_buffer(rgb, size), font }
    }

    /// Pen position of each glyph of `text` at `scale`, and the advance of the whole line.
    fn layout(&self, text: &str, scale: PxScale) -> (Vec<(ab_glyph::GlyphId, f32)>, f32) {
        let font = self.font.as_scaled(scale);
        let mut pen = 0.0;
        let mut prev = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                pen += font.kern(p, id);
            }
            glyphs.push((id, pen));
            pen += font.h_advance(id);
            prev = Some(id);
        }
        (glyphs, pen)
    }
}

type Result<T> = std::result::Result<T, DrawingErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

impl DrawingBackend for TextBitmap<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<()> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<()> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<()> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Result<()> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(&mut self, upper_left: BackendCoord, bottom_right: BackendCoord, style: &S, fill: bool) -> Result<()> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, path: I, style: &S) -> Result<()> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(&mut self, center: BackendCoord, radius: u32, style: &S, fill: bool) -> Result<()> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(&mut self, vert: I, style: &S) -> Result<()> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Result<()> {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// The line's advance, and the font's height (ascent to descent) at this size.
    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32)> {
        let scale = PxScale::from(style.size() as f32);
        let font = self.font.as_scaled(scale);
        let (_, width) = self.layout(text, scale);
        Ok((width.ceil() as u32, (font.ascent() - font.descent()).ceil() as u32))
    }

    /// Each glyph at its pen position on a common baseline, anchored and
    /// rotated as the style asks, its coverage blended into the image.
    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Result<()> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let scale = PxScale::from(style.size() as f32);
        let (glyphs, width) = self.layout(text, scale);
        let font = self.font.as_scaled(scale);
        let height = font.ascent() - font.descent();
        let anchor = style.anchor();
        let left = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let baseline = font.ascent()
            - match anchor.v_pos {
                VPos::Top => 0.0,
                VPos::Center => height / 2.0,
                VPos::Bottom => height,
            };
        let transform = style.transform();
        let mut result = Ok(());
        for (id, pen) in glyphs {
            let Some(outline) = font.outline_glyph(id.with_scale_and_position(scale, point(left + pen, baseline))) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                if coverage <= 0.0 || result.is_err() {
                    return;
                }
                let (dx, dy) = transform.transform(bounds.min.x as i32 + x as i32, bounds.min.y as i32 + y as i32);
                let alpha = color.alpha * coverage.min(1.0) as f64;
                result = self.inner.draw_pixel((pos.0 + dx, pos.1 + dy), BackendColor { alpha, rgb: color.rgb });
            });
            if result.is_err() {
                break;
            }
        }
        result
    }
}
