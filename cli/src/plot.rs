//! Pictures of explanations: shap's summary bar plot (SVG and PNG, via plotters) and a question's
//! words coloured by attribution (HTML and ANSI terminal), like the origin's notebook.
//!
//! The summary plot is laid out by hand from rectangles and anchored text, so the SVG backend
//! never measures text and needs no font (text stays `<text>`). PNG rasterises glyphs, which needs
//! a TrueType font: one is looked up in the usual system locations (Debian's DejaVu first) or
//! registered with [`register_font_file`]; without one PNG fails with [`Error::NoFont`].

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use std::path::PathBuf;

use tagger_core::explain::Summary;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write plot: {0}")]
    Plot(String),

    #[error("cannot draw png text: no usable font (searched {searched}); write svg instead or register a font file")]
    NoFont { searched: String },
}

impl Error {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Font family the plots ask for; the registered TTF is filed under this name.
const FAMILY: &str = "sans-serif";

/// Where common Linux distributions keep a plain sans-serif TTF.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Whether a font has been registered for PNG text (searched for once, on first use).
static FONT: OnceLock<Mutex<bool>> = OnceLock::new();

fn font_state() -> &'static Mutex<bool> {
    FONT.get_or_init(|| {
        let found = FONT_CANDIDATES
            .iter()
            .any(|p| register_file(Path::new(p)).is_ok());
        Mutex::new(found)
    })
}

fn register_file(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // plotters keeps fonts for the life of the process and wants `'static` bytes; a font is
    // registered at most a handful of times, so leaking it is the intended use.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| {
        Error::Plot(format!(
            "{} is not a usable TrueType/OpenType font",
            path.display()
        ))
    })
}

/// Registers a TrueType/OpenType font file for PNG text, e.g. one shipped beside a binary.
#[cfg(test)]
pub fn register_font_file(path: impl AsRef<Path>) -> Result<()> {
    let state = font_state();
    register_file(path.as_ref())?;
    *state.lock().unwrap_or_else(|e| e.into_inner()) = true;
    Ok(())
}

/// Whether PNG output can draw text.
pub fn font_available() -> bool {
    *font_state().lock().unwrap_or_else(|e| e.into_inner())
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// Largest number of words drawn in a summary plot (shap's default `max_display`).
pub const MAX_WORDS: usize = 20;

const WIDTH: u32 = 960;
const ROW_HEIGHT: u32 = 26;
const TOP: i32 = 40;
const LABEL_WIDTH: i32 = 200;
const LEGEND_WIDTH: i32 = 200;
const AXIS_HEIGHT: i32 = 60;

fn plot_height(s: &Summary) -> u32 {
    let rows = s.features.len().clamp(1, MAX_WORDS) as u32;
    let legend = (s.tags.len() as u32 * 20 + TOP as u32).min(2000);
    (TOP as u32 + rows * ROW_HEIGHT + AXIS_HEIGHT as u32).max(legend)
}

/// The summary plot as an SVG document.
pub fn summary_svg(summary: &Summary) -> Result<String> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, plot_height(summary))).into_drawing_area();
        draw_summary(&root, summary)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Writes the summary plot as SVG.
pub fn write_summary_svg(summary: &Summary, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let svg = summary_svg(summary)?;
    std::fs::write(path, svg).map_err(|e| Error::io(path, e))
}

/// Writes the summary plot as PNG; [`Error::NoFont`] when no font could be found for its text.
pub fn write_summary_png(summary: &Summary, path: impl AsRef<Path>) -> Result<()> {
    if !font_available() {
        return Err(Error::NoFont {
            searched: FONT_CANDIDATES.join(", "),
        });
    }
    let path = path.as_ref();
    let root = BitMapBackend::new(path, (WIDTH, plot_height(summary))).into_drawing_area();
    draw_summary(&root, summary)?;
    root.present().map_err(plot_err)
}

/// Horizontal bars of mean |attribution|, one row per word (strongest on top), stacked with one
/// colour per tag, an x axis, and a legend: shap's multi-output summary bar plot.
fn draw_summary<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Summary) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    let (w, h) = root.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let font = |size: u32| TextStyle::from((FAMILY, size).into_font()).color(&BLACK);
    let words = &s.features[..s.features.len().min(MAX_WORDS)];

    root.draw(&Text::new(
        format!("mean |SHAP value| over {} questions", s.questions),
        (LABEL_WIDTH, TOP / 2),
        font(19).pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(plot_err)?;

    let x0 = LABEL_WIDTH;
    let x1 = w - LEGEND_WIDTH - 20;
    let max = words.iter().map(|f| f.total()).fold(0.0f64, f64::max);
    let (step, top) = nice_axis(max);
    let to_px = |v: f64| x0 + ((v / top) * f64::from(x1 - x0)).round() as i32;
    let bottom = TOP + words.len() as i32 * ROW_HEIGHT as i32;

    for (row, f) in words.iter().enumerate() {
        let y = TOP + row as i32 * ROW_HEIGHT as i32;
        let mid = y + ROW_HEIGHT as i32 / 2;
        root.draw(&Text::new(
            truncate(&f.word, 28),
            (x0 - 8, mid),
            font(17).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(plot_err)?;
        let mut acc = 0.0;
        for (t, &v) in f.mean_abs.iter().enumerate() {
            if v <= 0.0 {
                continue;
            }
            let (a, b) = (to_px(acc), to_px(acc + v));
            acc += v;
            if b > a {
                root.draw(&Rectangle::new(
                    [(a, y + 4), (b, y + ROW_HEIGHT as i32 - 4)],
                    tag_colour(t).filled(),
                ))
                .map_err(plot_err)?;
            }
        }
    }

    // x axis with ticks.
    let axis = ShapeStyle::from(&BLACK).stroke_width(1);
    root.draw(&PathElement::new(vec![(x0, bottom), (x1, bottom)], axis))
        .map_err(plot_err)?;
    root.draw(&PathElement::new(vec![(x0, TOP), (x0, bottom)], axis))
        .map_err(plot_err)?;
    let ticks = (top / step).round() as i32;
    for i in 0..=ticks {
        let v = f64::from(i) * step;
        let x = to_px(v);
        root.draw(&PathElement::new(vec![(x, bottom), (x, bottom + 5)], axis))
            .map_err(plot_err)?;
        root.draw(&Text::new(
            format_tick(v, step),
            (x, bottom + 8),
            font(15).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(plot_err)?;
    }
    root.draw(&Text::new(
        "mean(|SHAP value|) (average impact on tag probability)",
        ((x0 + x1) / 2, bottom + 34),
        font(16).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(plot_err)?;

    // Legend, one swatch per tag, clipped to the picture's height.
    let lx = w - LEGEND_WIDTH;
    for (t, tag) in s.tags.iter().enumerate() {
        let y = TOP + t as i32 * 20;
        if y + 20 > h {
            break;
        }
        root.draw(&Rectangle::new(
            [(lx, y + 3), (lx + 14, y + 17)],
            tag_colour(t).filled(),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            truncate(tag, 22),
            (lx + 20, y + 10),
            font(16).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Precision-recall curves

/// One model's precision-recall curve: (recall, precision) points and the point of its served
/// (per-tag) thresholds.
pub struct PrCurve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub served: (f64, f64),
}

const PR_WIDTH: u32 = 760;
const PR_HEIGHT: u32 = 620;

/// The precision-recall plot as an SVG document.
pub fn pr_svg(curves: &[PrCurve], rows: usize) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PR_WIDTH, PR_HEIGHT)).into_drawing_area();
        draw_pr(&root, curves, rows)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Writes the precision-recall plot as SVG.
pub fn write_pr_svg(curves: &[PrCurve], rows: usize, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let svg = pr_svg(curves, rows)?;
    std::fs::write(path, svg).map_err(|e| Error::io(path, e))
}

/// Writes the precision-recall plot as PNG; [`Error::NoFont`] when no font could be found.
pub fn write_pr_png(curves: &[PrCurve], rows: usize, path: impl AsRef<Path>) -> Result<()> {
    if !font_available() {
        return Err(Error::NoFont {
            searched: FONT_CANDIDATES.join(", "),
        });
    }
    let path = path.as_ref();
    let root = BitMapBackend::new(path, (PR_WIDTH, PR_HEIGHT)).into_drawing_area();
    draw_pr(&root, curves, rows)?;
    root.present().map_err(plot_err)
}

/// Recall on x, precision on y, both 0 to 1 with a grid every 0.1; one line per model over the
/// global thresholds, a ring on its served point; a legend below the title. Laid out by hand
/// like the summary plot, so the SVG needs no font.
fn draw_pr<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[PrCurve],
    rows: usize,
) -> Result<()> {
    root.fill(&WHITE).map_err(plot_err)?;
    let font = |size: u32| TextStyle::from((FAMILY, size).into_font()).color(&BLACK);
    let legend_height = 22 * curves.len() as i32;
    let (x0, x1) = (80, PR_WIDTH as i32 - 30);
    let (y0, y1) = (70 + legend_height, PR_HEIGHT as i32 - 60);
    let px = |recall: f64, precision: f64| {
        (
            x0 + (recall.clamp(0.0, 1.0) * f64::from(x1 - x0)).round() as i32,
            y1 - (precision.clamp(0.0, 1.0) * f64::from(y1 - y0)).round() as i32,
        )
    };
    root.draw(&Text::new(
        format!("precision-recall over global thresholds 0.01-0.99 ({rows} rows)"),
        (x0, 22),
        font(18).pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(plot_err)?;
    let grid = ShapeStyle::from(&RGBColor(225, 225, 225)).stroke_width(1);
    let axis = ShapeStyle::from(&BLACK).stroke_width(1);
    for i in 0..=10 {
        let v = f64::from(i) / 10.0;
        let (x, _) = px(v, 0.0);
        let (_, y) = px(0.0, v);
        root.draw(&PathElement::new(vec![(x, y0), (x, y1)], grid))
            .map_err(plot_err)?;
        root.draw(&PathElement::new(vec![(x0, y), (x1, y)], grid))
            .map_err(plot_err)?;
        root.draw(&Text::new(
            format!("{v:.1}"),
            (x, y1 + 8),
            font(14).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            format!("{v:.1}"),
            (x0 - 8, y),
            font(14).pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(plot_err)?;
    }
    root.draw(&PathElement::new(vec![(x0, y1), (x1, y1)], axis))
        .map_err(plot_err)?;
    root.draw(&PathElement::new(vec![(x0, y0), (x0, y1)], axis))
        .map_err(plot_err)?;
    root.draw(&Text::new(
        "micro recall",
        ((x0 + x1) / 2, y1 + 32),
        font(16).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(plot_err)?;
    root.draw(&Text::new(
        "micro precision",
        (x0 - 40, y0 - 16),
        font(16).pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(plot_err)?;
    for (i, c) in curves.iter().enumerate() {
        let colour = tag_colour(i);
        let line: Vec<(i32, i32)> = c.points.iter().map(|&(r, p)| px(r, p)).collect();
        root.draw(&PathElement::new(line, colour.stroke_width(2)))
            .map_err(plot_err)?;
        root.draw(&Circle::new(
            px(c.served.0, c.served.1),
            6,
            colour.stroke_width(2),
        ))
        .map_err(plot_err)?;
        let ly = 44 + 22 * i as i32;
        root.draw(&PathElement::new(
            vec![(x0, ly), (x0 + 24, ly)],
            colour.stroke_width(3),
        ))
        .map_err(plot_err)?;
        root.draw(&Text::new(
            format!("{} (ring: served thresholds)", truncate(&c.name, 60)),
            (x0 + 32, ly),
            font(15).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// A tick step from {1, 2, 5} x 10^k giving about five ticks, and the axis end it implies.
fn nice_axis(max: f64) -> (f64, f64) {
    if !(max > 0.0 && max.is_finite()) {
        return (0.2, 1.0);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * mag)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * mag);
    (step, (max / step).ceil().max(1.0) * step)
}

fn format_tick(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max_chars - 1).collect();
        out.push('…');
        out
    }
}

/// Tableau 10, the categorical palette shap's and matplotlib's plots use, repeated past ten tags.
fn tag_colour(t: usize) -> RGBColor {
    const PALETTE: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = PALETTE[t % PALETTE.len()];
    RGBColor(r, g, b)
}

// ---------------------------------------------------------------------------------------------
// Coloured questions

/// Background colour for a value, scaled by the largest |value| in the question: red for
/// positive, blue for negative, white for zero.
fn shade(value: f64, scale: f64) -> Option<(u8, u8, u8)> {
    if value == 0.0 || !value.is_finite() || scale <= 0.0 {
        return None;
    }
    let a = (value.abs() / scale).clamp(0.0, 1.0);
    let fade = (255.0 * (1.0 - 0.8 * a)).round() as u8;
    Some(if value > 0.0 {
        (255, fade, fade)
    } else {
        (fade, fade, 255)
    })
}

fn scale_of<S: AsRef<str>>(tokens: &[(S, f64)]) -> f64 {
    tokens
        .iter()
        .map(|(_, v)| v.abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// The question's words as HTML, each word with an attribution shaded red (raises the tag's
/// probability) or blue (lowers it), darker for larger |value|; the value is in the `title`.
/// Words are HTML-escaped.
pub fn html_question<S: AsRef<str>>(tokens: &[(S, f64)]) -> String {
    let scale = scale_of(tokens);
    let mut out = String::from("<p class=\"tagger-question\">");
    for (i, (token, value)) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let word = html_escape::encode_text(token.as_ref());
        match shade(*value, scale) {
            Some((r, g, b)) => out.push_str(&format!(
                "<span style=\"background-color:#{r:02x}{g:02x}{b:02x}\" title=\"{value:+.4}\">{word}</span>"
            )),
            None => out.push_str(&word),
        }
    }
    out.push_str("</p>");
    out
}

/// The question's words for a 24-bit-colour terminal, shaded like [`html_question`]. Control
/// characters in words are replaced so user text cannot inject terminal escapes.
pub fn ansi_question<S: AsRef<str>>(tokens: &[(S, f64)]) -> String {
    let scale = scale_of(tokens);
    let mut out = String::new();
    for (i, (token, value)) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let word: String = token
            .as_ref()
            .chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        match shade(*value, scale) {
            Some((r, g, b)) => out.push_str(&format!("\x1b[30;48;2;{r};{g};{b}m{word}\x1b[0m")),
            None => out.push_str(&word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagger_core::explain::{FeatureImportance, TagImportance, WordAttribution};

    fn sample() -> Summary {
        let features = vec![
            FeatureImportance {
                feature: 7,
                word: "pandas".into(),
                mean_abs: vec![0.30, 0.05],
            },
            FeatureImportance {
                feature: 3,
                word: "<script>".into(),
                mean_abs: vec![0.02, 0.12],
            },
            FeatureImportance {
                feature: 9,
                word: "list".into(),
                mean_abs: vec![0.0, 0.04],
            },
        ];
        Summary {
            questions: 25,
            tags: vec!["pandas".into(), "python".into()],
            features,
            per_tag: vec![
                TagImportance {
                    tag: "pandas".into(),
                    words: vec![WordAttribution {
                        word: "pandas".into(),
                        value: 0.3,
                    }],
                },
                TagImportance {
                    tag: "python".into(),
                    words: vec![WordAttribution {
                        word: "<script>".into(),
                        value: 0.12,
                    }],
                },
            ],
        }
    }

    #[test]
    fn summary_plot_writes_svg_and_png_naming_the_top_word() {
        let dir = tempfile::tempdir().unwrap();
        let svg_path = dir.path().join("summary.svg");
        write_summary_svg(&sample(), &svg_path).unwrap();
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("\npandas\n</text>"), "{svg}");
        // Words are escaped inside the SVG, never raw markup.
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        // One bar segment per nonzero (word, tag) pair, in its tag's colour.
        assert!(svg.contains("#1F77B4") || svg.contains("#1f77b4"));

        let png_path = dir.path().join("summary.png");
        match write_summary_png(&sample(), &png_path) {
            Ok(()) => {
                let png = std::fs::read(&png_path).unwrap();
                assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"));
            }
            Err(Error::NoFont { .. }) => eprintln!("skipping png check: no font on this machine"),
            Err(e) => panic!("png failed: {e}"),
        }
    }

    #[test]
    fn font_registration_rejects_missing_and_non_font_files() {
        let err = register_font_file("/nonexistent/font.ttf").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake.ttf");
        std::fs::write(&fake, b"not a font").unwrap();
        let err = register_font_file(&fake).unwrap_err();
        assert!(
            matches!(err, Error::Plot(ref m) if m.contains("fake.ttf")),
            "{err}"
        );
        let no_font = Error::NoFont {
            searched: FONT_CANDIDATES.join(", "),
        };
        assert!(no_font.to_string().contains("DejaVuSans.ttf"));
    }

    #[test]
    fn svg_needs_no_font_and_handles_empty_summary() {
        let empty = Summary {
            questions: 0,
            tags: vec![],
            features: vec![],
            per_tag: vec![],
        };
        let svg = summary_svg(&empty).unwrap();
        assert!(svg.contains("over 0 questions"));
    }

    #[test]
    fn nice_axis_covers_the_maximum() {
        for max in [0.0004, 0.013, 0.35, 0.9, 1.0, 7.3] {
            let (step, top) = nice_axis(max);
            assert!(
                top >= max && top - max <= step + 1e-12,
                "max {max}: step {step} top {top}"
            );
            assert!((top / step).round() <= 10.0);
        }
        assert_eq!(nice_axis(0.0), (0.2, 1.0));
    }

    #[test]
    fn html_question_escapes_and_colours_by_sign() {
        let html = html_question(&[("how", 0.0), ("<b>pandas</b>", 0.4), ("list", -0.2)]);
        assert!(html.contains("&lt;b&gt;pandas&lt;/b&gt;") && !html.contains("<b>"));
        // Strongest positive is the deepest red, the negative half as strong is a pale blue.
        assert!(
            html.contains("background-color:#ff3333\" title=\"+0.4000\""),
            "{html}"
        );
        assert!(
            html.contains("background-color:#9999ff\" title=\"-0.2000\">list</span>"),
            "{html}"
        );
        assert!(
            html.starts_with("<p class=\"tagger-question\">how <span"),
            "{html}"
        );
    }

    #[test]
    fn ansi_question_colours_and_strips_control_characters() {
        let out = ansi_question(&[("ok", 0.0), ("bad\x1b[2J", 1.0), ("neg", -1.0)]);
        assert!(out.starts_with("ok "));
        assert!(
            out.contains("\x1b[30;48;2;255;51;51mbad\u{fffd}[2J\x1b[0m"),
            "{out:?}"
        );
        assert!(out.contains("\x1b[30;48;2;51;51;255mneg\x1b[0m"));
        assert_eq!(out.matches('\x1b').count(), 4);
    }
}
