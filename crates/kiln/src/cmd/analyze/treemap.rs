//! A squarified treemap (Bruls, Huizing and van Wijk, 2000) of the final filesystem by
//! directory, for the HTML report: each directory's rectangle holds its children's, with
//! areas in proportion to their bytes. The layout is computed here, in a fixed order (bytes,
//! then path), so the same image always draws the same.

use kiln_inspect::{Analysis, NodeId};

/// A rectangle, in the SVG's units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// One drawn rectangle: a path (or the rest of a directory's children, `node: None`), its
/// bytes, its depth (top-level directories are 0) and the top-level entry it is under.
#[derive(Clone, Debug)]
pub(super) struct Cell {
    pub node: Option<NodeId>,
    pub label: String,
    pub bytes: u64,
    pub depth: u32,
    pub top: usize,
    pub rect: Rect,
    pub leaf: bool,
}

/// How deep directories are opened, how many children one shows (the rest are one cell),
/// and the smallest area (square units) opened further.
const MAX_DEPTH: u32 = 3;
const MAX_CHILDREN: usize = 24;
const MIN_OPEN_AREA: f64 = 2500.0;
/// The space a directory's label takes above its children, and the gap around them.
const HEADER: f64 = 14.0;
const INSET: f64 = 2.0;

/// The cells of the final filesystem of `a` in a `width` x `height` area, outer first.
pub(super) fn layout(a: &Analysis, width: f64, height: f64) -> Vec<Cell> {
    let sums = a.dir_bytes();
    let mut cells = Vec::new();
    let root = Rect {
        x: 0.0,
        y: 0.0,
        w: width,
        h: height,
    };
    place_children(
        a,
        &sums,
        kiln_inspect::tree::ROOT,
        root,
        0,
        None,
        &mut cells,
    );
    cells
}

#[allow(clippy::cast_precision_loss, clippy::too_many_arguments)]
fn place_children(
    a: &Analysis,
    sums: &[u64],
    dir: NodeId,
    area: Rect,
    depth: u32,
    top: Option<usize>,
    cells: &mut Vec<Cell>,
) {
    let mut kids: Vec<(NodeId, u64)> = a
        .tree
        .children(dir)
        .map(|n| (n, sums[n as usize]))
        .filter(|(_, b)| *b > 0)
        .collect();
    if kids.is_empty() || area.w < 1.0 || area.h < 1.0 {
        return;
    }
    kids.sort_by(|x, y| {
        y.1.cmp(&x.1)
            .then_with(|| a.tree.name(x.0).cmp(a.tree.name(y.0)))
    });
    let mut items: Vec<(Option<NodeId>, u64)> = kids
        .iter()
        .take(MAX_CHILDREN)
        .map(|&(n, b)| (Some(n), b))
        .collect();
    if kids.len() > MAX_CHILDREN {
        let rest: u64 = kids[MAX_CHILDREN..].iter().map(|k| k.1).sum();
        items.push((None, rest));
    }
    let values: Vec<f64> = items.iter().map(|i| i.1 as f64).collect();
    let rects = squarify(&values, area);
    for (k, ((node, bytes), rect)) in items.into_iter().zip(rects).enumerate() {
        let top = top.unwrap_or(k);
        let (label, has_children) = match node {
            Some(n) => (
                String::from_utf8_lossy(a.tree.name(n)).into_owned(),
                a.tree.children(n).next().is_some(),
            ),
            None => (format!("{} more", kids.len() - MAX_CHILDREN), false),
        };
        let open = has_children
            && depth + 1 < MAX_DEPTH
            && rect.w * rect.h >= MIN_OPEN_AREA
            && rect.h > HEADER + 2.0 * INSET;
        cells.push(Cell {
            node,
            label,
            bytes,
            depth,
            top,
            rect,
            leaf: !open,
        });
        if let (true, Some(n)) = (open, node) {
            let inner = Rect {
                x: rect.x + INSET,
                y: rect.y + HEADER,
                w: (rect.w - 2.0 * INSET).max(0.0),
                h: (rect.h - HEADER - INSET).max(0.0),
            };
            place_children(a, sums, n, inner, depth + 1, Some(top), cells);
        }
    }
}

/// Rectangles for `values` (largest first) tiling `area`, in the same order: rows are laid
/// along the shorter side, and a value joins the current row while that does not make the
/// row's worst aspect ratio worse.
pub(super) fn squarify(values: &[f64], area: Rect) -> Vec<Rect> {
    let total: f64 = values.iter().sum();
    let mut out = Vec::with_capacity(values.len());
    if total <= 0.0 {
        return values
            .iter()
            .map(|_| Rect {
                w: 0.0,
                h: 0.0,
                ..area
            })
            .collect();
    }
    let scale = area.w * area.h / total;
    let mut rest = area;
    let mut i = 0;
    while i < values.len() {
        let side = rest.w.min(rest.h);
        let mut end = i + 1;
        let mut worst_now = worst(&values[i..end], side, scale);
        while end < values.len() {
            let next = worst(&values[i..=end], side, scale);
            if next > worst_now {
                break;
            }
            worst_now = next;
            end += 1;
        }
        let row = &values[i..end];
        let row_area: f64 = row.iter().sum::<f64>() * scale;
        let thickness = if side > 0.0 { row_area / side } else { 0.0 };
        let mut offset = 0.0;
        for v in row {
            let len = if thickness > 0.0 {
                v * scale / thickness
            } else {
                0.0
            };
            out.push(if rest.w >= rest.h {
                // A column along the left edge.
                Rect {
                    x: rest.x,
                    y: rest.y + offset,
                    w: thickness,
                    h: len,
                }
            } else {
                // A row along the top edge.
                Rect {
                    x: rest.x + offset,
                    y: rest.y,
                    w: len,
                    h: thickness,
                }
            });
            offset += len;
        }
        if rest.w >= rest.h {
            rest.x += thickness;
            rest.w = (rest.w - thickness).max(0.0);
        } else {
            rest.y += thickness;
            rest.h = (rest.h - thickness).max(0.0);
        }
        i = end;
    }
    out
}

/// The worst aspect ratio of a row of `values` laid along a side of length `side`.
fn worst(values: &[f64], side: f64, scale: f64) -> f64 {
    let sum: f64 = values.iter().sum::<f64>() * scale;
    if sum <= 0.0 || side <= 0.0 {
        return f64::INFINITY;
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max) * scale;
    let min = values.iter().copied().fold(f64::MAX, f64::min) * scale;
    let s2 = side * side;
    (s2 * max / (sum * sum)).max(sum * sum / (s2 * min))
}

#[cfg(test)]
mod tests {
    use super::{Rect, squarify};

    #[test]
    fn squarify_tiles_the_area_in_proportion() {
        let area = Rect {
            x: 0.0,
            y: 0.0,
            w: 600.0,
            h: 400.0,
        };
        let values = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let rects = squarify(&values, area);
        assert_eq!(rects.len(), values.len());
        let total: f64 = values.iter().sum();
        for (v, r) in values.iter().zip(&rects) {
            let want = v / total * 600.0 * 400.0;
            assert!((r.w * r.h - want).abs() < 1e-6, "{r:?} for {v}");
            assert!(r.x >= -1e-9 && r.y >= -1e-9);
            assert!(r.x + r.w <= 600.0 + 1e-6 && r.y + r.h <= 400.0 + 1e-6);
        }
        // No two overlap.
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                let overlap_w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                let overlap_h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                assert!(overlap_w <= 1e-6 || overlap_h <= 1e-6, "{a:?} {b:?}");
            }
        }
        // The paper's example: the first row is the two 6s, stacked along the short side.
        assert!((rects[0].w - 300.0).abs() < 1e-6 && (rects[0].h - 200.0).abs() < 1e-6);
        assert!((rects[1].y - 200.0).abs() < 1e-6);
    }
}
