//! SVG chart primitives shared by the reports Tessera's tools draw: the chaos harness's
//! `timeline.svg` and `tessera bench --svg`.
//!
//! Both write plain SVG text with no plotting dependency; what they share lives here, so a fix
//! to escaping, to the log-scale axis or to placing values in a plot is made once: [`escape`]
//! for any text or attribute value, [`LogScale`] for a latency axis in whole decades and
//! [`Frame`] for the rectangle a plot fills. Layout, colours and what is drawn stay with each
//! report. Pure functions: no I/O.
#![warn(missing_docs)]

/// `text` made safe inside SVG text or a quoted attribute: the five XML special characters
/// become entities and control characters (other than newline and tab) spaces, so a label
/// taken from input (a key name, a CPU model) cannot break the document.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if u32::from(c) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A log-scale axis over whole decades: from the decade at or below the smallest value to
/// the one at or above the largest, at least one decade wide.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogScale {
    lo_exp: f64,
    hi_exp: f64,
}

impl LogScale {
    /// The axis spanning `lo..=hi` (both clamped to at least `floor`, which keeps the
    /// logarithm finite for zero latencies).
    #[must_use]
    pub fn spanning(lo: f64, hi: f64, floor: f64) -> Self {
        let lo_exp = lo.max(floor).log10().floor();
        let hi_exp = hi.max(floor).log10().ceil().max(lo_exp + 1.0);
        Self { lo_exp, hi_exp }
    }

    /// Where `value` sits on the axis: 0 at the lowest decade, 1 at the highest.
    #[must_use]
    pub fn fraction(&self, value: f64) -> f64 {
        (value.log10() - self.lo_exp) / (self.hi_exp - self.lo_exp)
    }

    /// The decade values (1, 10, 100, …) from the lowest to the highest, for grid lines and
    /// labels.
    pub fn decades(&self) -> impl Iterator<Item = f64> {
        let (lo, hi) = (self.lo_exp, self.hi_exp);
        // Whole decades; the bound is small (a latency axis spans a handful).
        let count = (hi - lo).max(0.0) as u32;
        (0..=count).map(move |i| 10f64.powf(lo + f64::from(i)))
    }
}

/// The rectangle a plot fills, in pixels of the drawing (y grows downwards, as in SVG):
/// where a value's position along an axis lands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// x of the left edge.
    pub left: f64,
    /// y of the top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl Frame {
    /// x of the right edge.
    #[must_use]
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    /// y of the bottom edge.
    #[must_use]
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }

    /// x of a position `fraction` of the way across: 0 at the left edge, 1 at the right.
    #[must_use]
    pub fn x(&self, fraction: f64) -> f64 {
        self.left + self.width * fraction
    }

    /// y of a position `fraction` of the way up: 0 at the bottom edge, 1 at the top.
    #[must_use]
    pub fn y(&self, fraction: f64) -> f64 {
        self.bottom() - fraction * self.height
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_the_document_well_formed() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos; \n"
        );
    }

    #[test]
    fn a_log_scale_spans_whole_decades() {
        let scale = LogScale::spanning(3.0, 420.0, 1.0);
        assert_eq!(
            scale.decades().collect::<Vec<_>>(),
            vec![1.0, 10.0, 100.0, 1000.0]
        );
        assert!(scale.fraction(1.0).abs() < 1e-9);
        assert!((scale.fraction(1000.0) - 1.0).abs() < 1e-9);
        // One value: still one decade wide; zero clamps to the floor.
        let one = LogScale::spanning(0.0, 0.0, 0.001);
        assert_eq!(one.decades().count(), 2);
    }

    #[test]
    fn a_frame_places_fractions_between_its_edges() {
        let frame = Frame {
            left: 10.0,
            top: 20.0,
            width: 100.0,
            height: 50.0,
        };
        assert_eq!((frame.right(), frame.bottom()), (110.0, 70.0));
        assert_eq!(
            (frame.x(0.0), frame.x(0.5), frame.x(1.0)),
            (10.0, 60.0, 110.0)
        );
        // Up is towards the top edge, which has the smaller y.
        assert_eq!(
            (frame.y(0.0), frame.y(0.5), frame.y(1.0)),
            (70.0, 45.0, 20.0)
        );
    }
}
