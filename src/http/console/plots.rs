//! The operations page's plots, drawn on the server as SVG: pure functions from labels and
//! counts to a self-contained image (no script, no external font, no stylesheet). Each is an
//! accessible image (`role="img"`, `<title>`, `<desc>` listing every number, so a screen
//! reader gets the data the bars show) sized by its `viewBox` alone, so it scales to the
//! width of the page. plotters draws the axes, ticks and bars; the legend is laid out here,
//! where text widths know that a Chinese character is about twice as wide as a Latin one.
//! Labels are the caller's, already in the reader's language.

// The console page that draws these is written beside this module; once it calls them,
// this goes.
#![allow(dead_code)]

use chrono::NaiveDate;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width of every plot in SVG units; the page scales it.
const WIDTH: u32 = 720;
/// plotters writes a font size as the given size / 1.24: labels come out at about 14.5 px,
/// the title at about 19 px.
const LABEL_SIZE: f64 = 18.0;
const TITLE_SIZE: f64 = 24.0;
const FONT: FontFamily<'static> = FontFamily::SansSerif;
/// Text and axes: near-black on white (about 17:1).
const INK: RGBColor = RGBColor(0x1a, 0x1a, 0x1a);
/// Grid lines: only a guide for the eye, behind the bars.
const GRID: RGBColor = RGBColor(0xd9, 0xd9, 0xd9);
/// Series colours, in order: each at least 3:1 against the white background (WCAG 2.1,
/// non-text contrast; a test holds them to it) and told apart with the common colour-vision
/// deficiencies (blue, orange, teal, purple before the rest).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0x0b, 0x5c, 0xad),
    RGBColor(0xb3, 0x47, 0x00),
    RGBColor(0x00, 0x79, 0x6b),
    RGBColor(0x7b, 0x3f, 0x9e),
    RGBColor(0x5b, 0x67, 0x70),
    RGBColor(0xa0, 0x30, 0x6a),
];

/// Height of the title strip, of one legend row, of one bar's row, of the value axis.
const HEADER: u32 = 44;
const LEGEND_ROW: u32 = 28;
const ROW: u32 = 34;
const AXIS: u32 = 36;
const DAILY_HEIGHT: u32 = 340;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), String>;

/// Active orders per category (a province), one stacked segment per series (a state):
/// `series[k].1[i]` is series `k`'s count in `categories[i]`. Categories top to bottom in
/// the order given, the total at the end of each bar, a legend naming the series.
pub fn stacked_bars(title: &str, categories: &[String], series: &[(String, Vec<u64>)]) -> String {
    let desc = categories
        .iter()
        .enumerate()
        .map(|(i, category)| {
            let parts: Vec<String> = series
                .iter()
                .filter_map(|(name, values)| {
                    let n = value(values, i);
                    (n > 0).then(|| format!("{name} {n}"))
                })
                .collect();
            if parts.is_empty() {
                format!("{category}: 0")
            } else {
                format!("{category}: {}", parts.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let names: Vec<&str> = series.iter().map(|(name, _)| name.as_str()).collect();
    let legend = legend_layout(&names);
    let height = HEADER + legend.height + body_height(categories.len());
    let svg = draw(height, |root| {
        let (top, body) = root.split_vertically(HEADER + legend.height);
        heading(&top, title)?;
        draw_legend(&top, &legend, &names)?;
        horizontal_bars(&body, categories, series)
    });
    accessible(title, &desc, height, svg)
}

/// One bar per category (a province's orders past due), top to bottom in the order given,
/// its count at its end.
pub fn bars(title: &str, values: &[(String, u64)]) -> String {
    let desc = values
        .iter()
        .map(|(label, n)| format!("{label} {n}"))
        .collect::<Vec<_>>()
        .join("; ");
    let categories: Vec<String> = values.iter().map(|(label, _)| label.clone()).collect();
    let series = [(String::new(), values.iter().map(|(_, n)| *n).collect())];
    let height = HEADER + body_height(categories.len());
    let svg = draw(height, |root| {
        let (top, body) = root.split_vertically(HEADER);
        heading(&top, title)?;
        horizontal_bars(&body, &categories, &series)
    });
    accessible(title, &desc, height, svg)
}

/// A count per day (completions), oldest first, one column per day: dates on the horizontal
/// axis as `MM-DD`, about eight of them labelled; the description lists every day that has
/// a count.
pub fn daily_bars(title: &str, days: &[(NaiveDate, u64)]) -> String {
    let counted: Vec<String> = days
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(d, n)| format!("{} {n}", d.format("%Y-%m-%d")))
        .collect();
    let desc = match (days.first(), days.last()) {
        (Some((first, _)), Some((last, _))) => format!(
            "{} – {}: {}",
            first.format("%Y-%m-%d"),
            last.format("%Y-%m-%d"),
            if counted.is_empty() {
                "0".to_owned()
            } else {
                counted.join("; ")
            }
        ),
        _ => String::new(),
    };
    let svg = draw(DAILY_HEIGHT, |root| {
        let (top, body) = root.split_vertically(HEADER);
        heading(&top, title)?;
        columns(&body, days)
    });
    accessible(title, &desc, DAILY_HEIGHT, svg)
}

fn value(values: &[u64], i: usize) -> u64 {
    values.get(i).copied().unwrap_or(0)
}

fn colour(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

fn label_style() -> TextStyle<'static> {
    (FONT, LABEL_SIZE).into_font().color(&INK)
}

/// Rendered label size in px (what plotters writes as `font-size`).
fn label_px() -> f64 {
    LABEL_SIZE / 1.24
}

/// An estimate of a label's width at `px`: East Asian wide characters take a full em,
/// others about 0.6 of one. The SVG's reader picks the real font; this only keeps labels
/// from running into each other.
fn text_width(text: &str, px: f64) -> f64 {
    let ems: f64 = text
        .chars()
        .map(|c| if is_wide(c) { 1.0 } else { 0.6 })
        .sum();
    ems * px
}

fn is_wide(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

fn body_height(categories: usize) -> u32 {
    let rows = u32::try_from(categories.max(1)).unwrap_or(u32::MAX / ROW);
    rows.saturating_mul(ROW).saturating_add(AXIS + 12)
}

/// The largest value the axis shows: the largest count rounded up to a round number, so the
/// ticks fall on whole numbers and the longest bar leaves room for its count.
fn axis_top(largest: u64) -> u64 {
    let target = largest.max(1);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m);
            if top >= target {
                return top;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Where each legend entry goes (left, top), wrapping to a new row when one is full.
struct LegendLayout {
    at: Vec<(i32, i32)>,
    height: u32,
}

const SWATCH: i32 = 14;

fn legend_layout(names: &[&str]) -> LegendLayout {
    let (left, right) = (16i32, WIDTH as i32 - 16);
    let (mut x, mut y) = (left, 0i32);
    let mut at = Vec::with_capacity(names.len());
    for name in names {
        let width = SWATCH + 6 + text_width(name, label_px()).ceil() as i32;
        if x > left && x + width > right {
            x = left;
            y += LEGEND_ROW as i32;
        }
        at.push((x, y));
        x += width + 20;
    }
    let rows = if names.is_empty() {
        0
    } else {
        y as u32 / LEGEND_ROW + 1
    };
    LegendLayout {
        at,
        height: rows * LEGEND_ROW,
    }
}

fn fail<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn heading(area: &Area, title: &str) -> Drawn {
    let style = FontDesc::new(FONT, TITLE_SIZE, FontStyle::Bold)
        .color(&INK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(title.to_owned(), (WIDTH as i32 / 2, 10), style))
        .map_err(fail)
}

fn draw_legend(area: &Area, layout: &LegendLayout, names: &[&str]) -> Drawn {
    for (k, (name, (x, y))) in names.iter().zip(&layout.at).enumerate() {
        let y = HEADER as i32 + y + 4;
        area.draw(&Rectangle::new(
            [(*x, y), (x + SWATCH, y + SWATCH)],
            colour(k).filled(),
        ))
        .map_err(fail)?;
        let style = label_style().pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(
            (*name).to_owned(),
            (x + SWATCH + 6, y + SWATCH / 2),
            style,
        ))
        .map_err(fail)?;
    }
    Ok(())
}

/// Bars left to right, one row per category, segments stacked in series order.
fn horizontal_bars(area: &Area, categories: &[String], series: &[(String, Vec<u64>)]) -> Drawn {
    let rows = categories.len().max(1);
    let totals: Vec<u64> = (0..categories.len())
        .map(|i| series.iter().map(|(_, v)| value(v, i)).sum())
        .collect();
    let top = axis_top(totals.iter().copied().max().unwrap_or(0));
    let widest = categories
        .iter()
        .map(|c| text_width(c, label_px()))
        .fold(0.0, f64::max);
    let label_area = (widest.ceil() as u32 + 16).clamp(48, WIDTH / 3);
    // Category i is drawn in segment rows-1-i, so the first comes out on top.
    let segment = |i: usize| rows - 1 - i;
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(s) if *s < rows => {
            categories.get(rows - 1 - s).cloned().unwrap_or_default()
        }
        _ => String::new(),
    };
    let whole = |v: &u64| v.to_string();
    let mut chart = ChartBuilder::on(area)
        .margin_top(4)
        .margin_left(8)
        // Room for the count written after the longest bar.
        .margin_right(56)
        .x_label_area_size(AXIS)
        .y_label_area_size(label_area)
        .build_cartesian_2d(0u64..top, (0..rows - 1).into_segmented())
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .x_labels(6)
        .y_labels(rows)
        .label_style(label_style())
        .x_label_formatter(&whole)
        .y_label_formatter(&label)
        .draw()
        .map_err(fail)?;
    for (i, total) in totals.iter().enumerate() {
        let s = segment(i);
        let mut base = 0u64;
        for (k, (_, values)) in series.iter().enumerate() {
            let n = value(values, i);
            if n == 0 {
                continue;
            }
            let mut bar = Rectangle::new(
                [
                    (base, SegmentValue::Exact(s)),
                    (base + n, SegmentValue::Exact(s + 1)),
                ],
                colour(k).filled(),
            );
            bar.set_margin(6, 6, 0, 0);
            chart.draw_series(std::iter::once(bar)).map_err(fail)?;
            base += n;
        }
        if *total > 0 {
            let count = EmptyElement::at((*total, SegmentValue::CenterOf(s)))
                + Text::new(
                    total.to_string(),
                    (6, 0),
                    label_style().pos(Pos::new(HPos::Left, VPos::Center)),
                );
            chart.draw_series(std::iter::once(count)).map_err(fail)?;
        }
    }
    Ok(())
}

/// One column per day, oldest on the left.
fn columns(area: &Area, days: &[(NaiveDate, u64)]) -> Drawn {
    let n = days.len().max(1);
    let top = axis_top(days.iter().map(|(_, c)| *c).max().unwrap_or(0));
    // About eight dates labelled, counted from the newest so today always has its label.
    let step = n.div_ceil(8).max(1);
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n && (n - 1 - i).is_multiple_of(step) => days
            .get(*i)
            .map(|(d, _)| d.format("%m-%d").to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let whole = |v: &u64| v.to_string();
    let mut chart = ChartBuilder::on(area)
        .margin_top(4)
        .margin_left(8)
        .margin_right(24)
        .x_label_area_size(AXIS)
        .y_label_area_size(56)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0u64..top)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(INK)
        .x_labels(n)
        .y_labels(6)
        .label_style(label_style())
        .x_label_formatter(&label)
        .y_label_formatter(&whole)
        .draw()
        .map_err(fail)?;
    let gap = if n > 45 { 1 } else { 2 };
    for (i, (_, count)) in days.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0),
                (SegmentValue::Exact(i + 1), *count),
            ],
            colour(0).filled(),
        );
        bar.set_margin(0, 0, gap, gap);
        chart.draw_series(std::iter::once(bar)).map_err(fail)?;
    }
    Ok(())
}

/// The plot drawn by `paint` on a white `WIDTH` × `height` canvas, as plotters' SVG; empty
/// (logged) should drawing fail, which leaves the accessible wrapper and its description.
fn draw(height: u32, paint: impl FnOnce(&Area) -> Drawn) -> String {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(fail)
            .and_then(|()| paint(&root))
            .and_then(|()| root.present().map_err(fail))
    };
    match drawn {
        Ok(()) => svg,
        Err(e) => {
            tracing::warn!(error = %e, "drawing a plot failed");
            String::new()
        }
    }
}

/// The accessible image around plotters' drawing, which keeps its own `<svg>` root as a
/// nested viewport: the outer root has no fixed size (the page scales it by its `viewBox`),
/// is one image to assistive technology, and is named by its title and described by
/// `desc`.
fn accessible(title: &str, desc: &str, height: u32, drawing: String) -> String {
    let id = element_id(title, desc);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" \
         role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         preserveAspectRatio=\"xMidYMid meet\" font-family=\"sans-serif\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{drawing}</svg>",
        escape(title),
        escape(desc)
    )
}

/// An id for the title and description, the same for the same plot, different enough that
/// two plots on one page do not share it (FNV-1a of the text).
fn element_id(title: &str, desc: &str) -> String {
    let hash = title
        .bytes()
        .chain([0])
        .chain(desc.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("plot-{hash:016x}")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use quick_xml::events::Event;

    use super::*;

    /// Parses the whole document, every start tag closed by its own end tag, and returns the
    /// root element's attributes.
    fn parse(svg: &str) -> Vec<(String, String)> {
        let mut reader = quick_xml::Reader::from_str(svg);
        let (mut depth, mut root) = (0usize, None);
        loop {
            match reader.read_event().unwrap_or_else(|e| panic!("{e}: {svg}")) {
                Event::Start(e) => {
                    if depth == 0 {
                        assert_eq!(e.name().as_ref(), b"svg");
                        root = Some(
                            e.attributes()
                                .map(|a| {
                                    let a = a.unwrap();
                                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                                    (key, a.unescape_value().unwrap().into_owned())
                                })
                                .collect(),
                        );
                    }
                    depth += 1;
                }
                Event::End(_) => depth -= 1,
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element closed");
        root.expect("a root element")
    }

    fn attribute<'a>(root: &'a [(String, String)], name: &str) -> Option<&'a str> {
        root.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn fill(k: usize) -> String {
        let RGBColor(r, g, b) = PALETTE[k];
        format!("fill=\"#{r:02X}{g:02X}{b:02X}\"")
    }

    fn provinces() -> Vec<String> {
        vec!["云南省".into(), "北京市".into(), "A<&B \"省\"".into()]
    }

    fn backlog() -> String {
        stacked_bars(
            "积压工单 & backlog",
            &provinces(),
            &[
                ("待认领".into(), vec![2, 1, 0]),
                ("已认领".into(), vec![1, 0, 0]),
                ("已提交".into(), vec![0, 0, 3]),
            ],
        )
    }

    #[test]
    fn every_plot_is_well_formed_xml_and_an_accessible_image_that_scales() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let plots = [
            backlog(),
            bars("逾期工单", &[("云南省".into(), 4), ("北京市".into(), 0)]),
            daily_bars("每日完成", &[(day(1), 0), (day(2), 3), (day(3), 1)]),
            stacked_bars("空", &[], &[]),
            bars("空", &[]),
            daily_bars("空", &[]),
        ];
        for svg in &plots {
            let root = parse(svg);
            assert_eq!(attribute(&root, "role"), Some("img"), "{svg}");
            assert_eq!(attribute(&root, "width"), None, "sized by its viewBox only");
            assert!(attribute(&root, "viewBox").is_some_and(|v| v.starts_with("0 0 720 ")));
            let labelled = attribute(&root, "aria-labelledby").unwrap();
            for id in labelled.split(' ') {
                assert!(
                    svg.contains(&format!("id=\"{id}\"")),
                    "{id} is in the image"
                );
            }
            assert!(svg.contains("<desc id="), "{svg}");
            for banned in ["<script", "<style", "@import", "href=", "<foreignObject"] {
                assert!(!svg.contains(banned), "{banned} in {svg}");
            }
        }
    }

    #[test]
    fn the_title_names_the_plot_and_the_description_gives_every_number() {
        let svg = backlog();
        assert!(svg.contains("<title id=\""));
        assert!(svg.contains(">积压工单 &amp; backlog</title>"), "{svg}");
        assert!(
            svg.contains("云南省: 待认领 2, 已认领 1; 北京市: 待认领 1; A&lt;&amp;B &quot;省&quot;: 已提交 3</desc>"),
            "{svg}"
        );
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let daily = daily_bars("每日完成", &[(day(1), 0), (day(2), 3), (day(3), 0)]);
        assert!(
            daily.contains(">2026-12-01 – 2026-12-03: 2026-12-02 3</desc>"),
            "{daily}"
        );
        let quiet = daily_bars("每日完成", &[(day(1), 0)]);
        assert!(
            quiet.contains(">2026-12-01 – 2026-12-01: 0</desc>"),
            "{quiet}"
        );
    }

    #[test]
    fn one_bar_per_non_zero_value() {
        let svg = backlog();
        // Each series' colour fills its bars and its legend swatch.
        assert_eq!(svg.matches(&fill(0)).count(), 2 + 1, "{svg}");
        assert_eq!(svg.matches(&fill(1)).count(), 1 + 1);
        assert_eq!(svg.matches(&fill(2)).count(), 1 + 1);
        let past_due = bars(
            "逾期工单",
            &[
                ("云南省".into(), 4),
                ("北京市".into(), 0),
                ("山东省".into(), 1),
            ],
        );
        assert_eq!(
            past_due.matches(&fill(0)).count(),
            2,
            "no legend for one series"
        );
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let days: Vec<(NaiveDate, u64)> =
            (1..=30).map(|d| (day(d), u64::from(d % 3 == 0))).collect();
        let daily = daily_bars("每日完成", &days);
        assert_eq!(daily.matches(&fill(0)).count(), 10);
    }

    #[test]
    fn labels_are_escaped_and_written_as_given() {
        let svg = backlog();
        assert!(svg.contains("A&lt;&amp;B &quot;省&quot;"), "{svg}");
        assert!(!svg.contains("A<&B"));
        for label in ["云南省", "北京市", "待认领", "已认领", "已提交"] {
            assert!(svg.contains(label), "{label}");
        }
        // The counts at the bars' ends and the axis ticks are there as text.
        assert!(svg.contains(">\n3\n</text>"), "{svg}");
    }

    /// WCAG 2.1 relative luminance and contrast ratio.
    fn contrast(a: RGBColor, b: RGBColor) -> f64 {
        fn channel(c: u8) -> f64 {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        let luminance = |RGBColor(r, g, b): RGBColor| {
            0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
        };
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    #[test]
    fn colours_stand_out_from_the_white_background() {
        for c in PALETTE {
            assert!(contrast(c, WHITE) >= 3.0, "{c:?}: {}", contrast(c, WHITE));
        }
        assert!(contrast(INK, WHITE) >= 7.0);
    }

    #[test]
    fn the_axis_ends_on_a_round_number_at_or_above_the_largest_count() {
        let tops: Vec<u64> = [0, 1, 2, 3, 7, 10, 11, 49, 51, 999].map(axis_top).to_vec();
        assert_eq!(tops, [1, 1, 2, 5, 10, 10, 20, 50, 100, 1000]);
    }

    #[test]
    fn wide_characters_count_twice_as_wide_as_latin_ones() {
        assert_eq!(text_width("云南", 10.0), 20.0);
        assert_eq!(text_width("ab", 10.0), 12.0);
        let layout = legend_layout(&["待认领"; 40]);
        assert!(layout.height > LEGEND_ROW, "a long legend wraps");
        assert!(layout.at.iter().all(|(x, _)| *x < WIDTH as i32 - 16));
    }
}
