//! The inpainting mask as the user paints it: round brush strokes (1 = missing, 0 = valid, never
//! in between, so the downloaded mask PNG decodes back to exactly the mask the model saw), an
//! eraser, undo / redo per stroke, clear. Pure Rust: tested natively, drawn by `mask_canvas`.

use restora_model::Mask;

/// Undo history is dropped oldest first beyond this many bytes.
const HISTORY_BYTES: usize = 64 << 20;

/// A pixel rectangle `[x, x + width) × [y, y + height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    fn union(self, other: Rect) -> Rect {
        let (x0, y0) = (self.x.min(other.x), self.y.min(other.y));
        let x1 = (self.x + self.width).max(other.x + other.width);
        let y1 = (self.y + self.height).max(other.y + other.height);
        Rect { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }
    }
}

/// One undoable change: a rectangle's values before and after.
#[derive(Debug, Clone)]
struct Edit {
    rect: Rect,
    before: Vec<u8>,
    after: Vec<u8>,
}

impl Edit {
    fn bytes(&self) -> usize {
        self.before.len() + self.after.len()
    }
}

/// A stroke in progress.
#[derive(Debug, Clone)]
struct Stroke {
    erase: bool,
    radius: f32,
    last: Option<(f32, f32)>,
    snapshot: Vec<u8>,
    dirty: Option<Rect>,
}

/// The mask with its editing history.
#[derive(Debug, Clone)]
pub struct MaskEditor {
    mask: Mask,
    undo: Vec<Edit>,
    redo: Vec<Edit>,
    stroke: Option<Stroke>,
}

impl MaskEditor {
    /// An empty mask for an image of this size.
    pub fn new(width: u32, height: u32) -> Self {
        Self::from_mask(Mask::zeros(width, height))
    }

    /// Starts from an existing mask (binarised at 0.5), with no history.
    pub fn from_mask(mut mask: Mask) -> Self {
        mask.data_mut().iter_mut().for_each(|v| *v = if *v > 0.5 { 1.0 } else { 0.0 });
        Self { mask, undo: Vec::new(), redo: Vec::new(), stroke: None }
    }

    pub fn mask(&self) -> &Mask {
        &self.mask
    }

    pub fn width(&self) -> u32 {
        self.mask.width()
    }

    pub fn height(&self) -> u32 {
        self.mask.height()
    }

    /// Whether no pixel is marked missing.
    pub fn is_empty(&self) -> bool {
        self.mask.data().iter().all(|&v| v == 0.0)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Starts a stroke of the given diameter in image pixels; `erase` clears instead of painting.
    pub fn begin_stroke(&mut self, diameter: f32, erase: bool) {
        self.end_stroke();
        self.stroke =
            Some(Stroke { erase, radius: (diameter / 2.0).max(0.5), last: None, snapshot: self.bytes(), dirty: None });
    }

    /// Extends the stroke to `(x, y)` (image pixels, continuous: pixel `(i, j)` covers
    /// `[i, i + 1) × [j, j + 1)`), covering every pixel whose centre lies within the brush radius
    /// of the segment from the previous point. Returns the rectangle that may have changed.
    pub fn stroke_to(&mut self, x: f32, y: f32) -> Option<Rect> {
        let (w, h) = (self.mask.width(), self.mask.height());
        let stroke = self.stroke.as_mut()?;
        let (x0, y0) = stroke.last.unwrap_or((x, y));
        stroke.last = Some((x, y));
        let r = stroke.radius;
        let value = if stroke.erase { 0.0 } else { 1.0 };
        let left = (x0.min(x) - r).floor().max(0.0);
        let top = (y0.min(y) - r).floor().max(0.0);
        let right = (x0.max(x) + r).ceil().min(w as f32);
        let bottom = (y0.max(y) + r).ceil().min(h as f32);
        if right <= left || bottom <= top {
            return None;
        }
        let rect = Rect { x: left as u32, y: top as u32, width: (right - left) as u32, height: (bottom - top) as u32 };
        let (dx, dy) = (x - x0, y - y0);
        let len2 = dx * dx + dy * dy;
        let mut touched = false;
        let data = self.mask.data_mut();
        for py in rect.y..rect.y + rect.height {
            for px in rect.x..rect.x + rect.width {
                let (cx, cy) = (px as f32 + 0.5, py as f32 + 0.5);
                // Distance from the pixel centre to the segment.
                let t = if len2 > 0.0 { (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (ex, ey) = (cx - (x0 + t * dx), cy - (y0 + t * dy));
                if ex * ex + ey * ey <= r * r {
                    data[(py * w + px) as usize] = value;
                    touched = true;
                }
            }
        }
        // A brush thinner than a pixel still marks the pixel under the pointer.
        if !touched && x >= 0.0 && y >= 0.0 && (x as u32) < w && (y as u32) < h {
            data[(y as u32 * w + x as u32) as usize] = value;
        }
        stroke.dirty = Some(stroke.dirty.map_or(rect, |d| d.union(rect)));
        Some(rect)
    }

    /// Ends the stroke: one undo step if anything changed. Returns whether it did.
    pub fn end_stroke(&mut self) -> bool {
        let Some(stroke) = self.stroke.take() else { return false };
        let Some(rect) = stroke.dirty else { return false };
        let before = crop(&stroke.snapshot, self.mask.width(), rect);
        let after = crop(&self.bytes(), self.mask.width(), rect);
        if before == after {
            return false;
        }
        self.push(Edit { rect, before, after });
        true
    }

    /// Marks every pixel valid (one undo step).
    pub fn clear(&mut self) -> bool {
        self.end_stroke();
        if self.is_empty() {
            return false;
        }
        let rect = Rect { x: 0, y: 0, width: self.mask.width(), height: self.mask.height() };
        let before = self.bytes();
        let after = vec![0; before.len()];
        self.mask.data_mut().iter_mut().for_each(|v| *v = 0.0);
        self.push(Edit { rect, before, after });
        true
    }

    /// Replaces the whole mask with `mask` (a mask file the user opened; binarised at 0.5), as one
    /// undo step. Returns whether anything changed; a mask of another size changes nothing.
    pub fn replace(&mut self, mask: &Mask) -> bool {
        self.end_stroke();
        if (mask.width(), mask.height()) != (self.width(), self.height()) {
            return false;
        }
        let before = self.bytes();
        let after: Vec<u8> = mask.data().iter().map(|&v| (v > 0.5) as u8).collect();
        if before == after {
            return false;
        }
        let rect = self.full();
        self.write(rect, &after);
        self.push(Edit { rect, before, after });
        true
    }

    /// Undoes the last stroke or clear; returns the rectangle that changed.
    pub fn undo(&mut self) -> Option<Rect> {
        self.end_stroke();
        let edit = self.undo.pop()?;
        self.write(edit.rect, &edit.before);
        let rect = edit.rect;
        self.redo.push(edit);
        Some(rect)
    }

    /// Redoes the last undone step; returns the rectangle that changed.
    pub fn redo(&mut self) -> Option<Rect> {
        self.end_stroke();
        let edit = self.redo.pop()?;
        self.write(edit.rect, &edit.after);
        let rect = edit.rect;
        self.undo.push(edit);
        Some(rect)
    }

    /// RGBA pixels of `rect` for the overlay: opaque `rgb` where missing, transparent elsewhere.
    pub fn overlay_rgba(&self, rect: Rect, rgb: [u8; 3]) -> Vec<u8> {
        let w = self.mask.width();
        let mut out = Vec::with_capacity((rect.width * rect.height * 4) as usize);
        for y in rect.y..rect.y + rect.height {
            for x in rect.x..rect.x + rect.width {
                if self.mask.data()[(y * w + x) as usize] > 0.5 {
                    out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
                } else {
                    out.extend_from_slice(&[0, 0, 0, 0]);
                }
            }
        }
        out
    }

    /// The whole mask as a rectangle.
    pub fn full(&self) -> Rect {
        Rect { x: 0, y: 0, width: self.mask.width(), height: self.mask.height() }
    }

    fn push(&mut self, edit: Edit) {
        self.redo.clear();
        self.undo.push(edit);
        let mut total: usize = self.undo.iter().map(Edit::bytes).sum();
        while total > HISTORY_BYTES && self.undo.len() > 1 {
            total -= self.undo.remove(0).bytes();
        }
    }

    fn bytes(&self) -> Vec<u8> {
        self.mask.data().iter().map(|&v| (v > 0.5) as u8).collect()
    }

    fn write(&mut self, rect: Rect, values: &[u8]) {
        let w = self.mask.width();
        let data = self.mask.data_mut();
        for (row, y) in (rect.y..rect.y + rect.height).enumerate() {
            for (col, x) in (rect.x..rect.x + rect.width).enumerate() {
                data[(y * w + x) as usize] = values[row * rect.width as usize + col] as f32;
            }
        }
    }
}

fn crop(bytes: &[u8], width: u32, rect: Rect) -> Vec<u8> {
    (rect.y..rect.y + rect.height)
        .flat_map(|y| {
            let start = (y * width + rect.x) as usize;
            bytes[start..start + rect.width as usize].iter().copied()
        })
        .collect()
}

/// Maps a pointer position in CSS pixels (viewport coordinates, as `clientX` / `clientY`) onto
/// continuous image pixel coordinates, given the element's on-screen box (`getBoundingClientRect`,
/// which includes any zoom) and the image size.
pub fn to_image_coords(
    client: (f64, f64),
    box_origin: (f64, f64),
    box_size: (f64, f64),
    image: (u32, u32),
) -> (f32, f32) {
    let sx = if box_size.0 > 0.0 { image.0 as f64 / box_size.0 } else { 1.0 };
    let sy = if box_size.1 > 0.0 { image.1 as f64 / box_size.1 } else { 1.0 };
    (((client.0 - box_origin.0) * sx) as f32, ((client.1 - box_origin.1) * sy) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(editor: &MaskEditor) -> usize {
        editor.mask().data().iter().filter(|&&v| v == 1.0).count()
    }

    #[test]
    fn a_dab_is_a_disc_and_values_stay_binary() {
        let mut editor = MaskEditor::new(40, 30);
        editor.begin_stroke(10.0, false);
        let rect = editor.stroke_to(20.0, 15.0).unwrap();
        assert!(editor.end_stroke());
        // π r² ≈ 78.5 pixel centres within radius 5.
        let n = count(&editor);
        assert!((70..=90).contains(&n), "{n}");
        assert!(editor.mask().data().iter().all(|&v| v == 0.0 || v == 1.0));
        assert_eq!(editor.mask().get(20, 15), 1.0);
        assert_eq!(editor.mask().get(20, 21), 0.0);
        assert_eq!(rect, Rect { x: 15, y: 10, width: 10, height: 10 });
    }

    #[test]
    fn a_drag_leaves_no_gaps_and_clips_at_the_border() {
        let mut editor = MaskEditor::new(50, 10);
        editor.begin_stroke(3.0, false);
        editor.stroke_to(-5.0, 5.0);
        editor.stroke_to(60.0, 5.0);
        editor.end_stroke();
        for x in 0..50 {
            assert_eq!(editor.mask().get(x, 5), 1.0, "gap at {x}");
        }
        assert_eq!(editor.mask().get(10, 0), 0.0);
    }

    #[test]
    fn thin_brushes_mark_the_pixel_under_the_pointer() {
        let mut editor = MaskEditor::new(8, 8);
        editor.begin_stroke(0.1, false);
        editor.stroke_to(3.9, 6.2);
        editor.end_stroke();
        assert_eq!(count(&editor), 1);
        assert_eq!(editor.mask().get(3, 6), 1.0);
    }

    #[test]
    fn eraser_undo_redo_and_clear() {
        let mut editor = MaskEditor::new(20, 20);
        editor.begin_stroke(8.0, false);
        editor.stroke_to(10.0, 10.0);
        editor.end_stroke();
        let painted = editor.mask().clone();
        editor.begin_stroke(4.0, true);
        editor.stroke_to(10.0, 10.0);
        editor.end_stroke();
        let erased = editor.mask().clone();
        assert!(count(&editor) < painted.data().iter().filter(|&&v| v == 1.0).count());
        assert!(editor.undo().is_some());
        assert_eq!(editor.mask(), &painted);
        assert!(editor.redo().is_some());
        assert_eq!(editor.mask(), &erased);
        assert!(editor.clear());
        assert!(editor.is_empty());
        assert!(!editor.clear(), "clearing an empty mask is not a step");
        editor.undo();
        assert_eq!(editor.mask(), &erased);
        editor.undo();
        editor.undo();
        assert!(editor.is_empty() && !editor.can_undo() && editor.can_redo());
        // A new stroke drops the redo history.
        editor.begin_stroke(2.0, false);
        editor.stroke_to(1.0, 1.0);
        editor.end_stroke();
        assert!(!editor.can_redo());
        // A stroke that changes nothing is not a step.
        editor.begin_stroke(2.0, true);
        editor.stroke_to(15.0, 15.0);
        assert!(!editor.end_stroke());
    }

    #[test]
    fn an_opened_mask_replaces_the_painted_one_as_one_undo_step() {
        let mut editor = MaskEditor::new(6, 4);
        editor.begin_stroke(2.0, false);
        editor.stroke_to(1.0, 1.0);
        editor.end_stroke();
        let painted = editor.mask().clone();
        let mut file = Mask::zeros(6, 4);
        file.data_mut()[23] = 0.9;
        file.data_mut()[0] = 0.2;
        assert!(editor.replace(&file));
        assert_eq!(count(&editor), 1);
        assert_eq!(editor.mask().get(5, 3), 1.0);
        assert!(!editor.replace(&file), "the same mask again is not a step");
        assert!(!editor.replace(&Mask::zeros(4, 6)), "another size changes nothing");
        assert_eq!(editor.mask().get(5, 3), 1.0);
        editor.undo();
        assert_eq!(editor.mask(), &painted);
        editor.redo();
        assert_eq!(count(&editor), 1);
    }

    #[test]
    fn mask_png_round_trip_is_exact() {
        let mut editor = MaskEditor::new(33, 17);
        editor.begin_stroke(5.0, false);
        editor.stroke_to(3.0, 3.0);
        editor.stroke_to(30.0, 12.0);
        editor.end_stroke();
        let back = Mask::decode(&editor.mask().encode_png().unwrap()).unwrap();
        assert_eq!(&back, editor.mask());
    }

    #[test]
    fn overlay_and_coordinates() {
        let mut editor = MaskEditor::new(4, 2);
        editor.begin_stroke(0.5, false);
        editor.stroke_to(1.5, 0.5);
        editor.end_stroke();
        let rgba = editor.overlay_rgba(editor.full(), [255, 0, 0]);
        assert_eq!(rgba.len(), 4 * 2 * 4);
        assert_eq!(&rgba[4..8], &[255, 0, 0, 255]);
        assert_eq!(&rgba[0..4], &[0, 0, 0, 0]);
        // A 448-px-wide image shown 224 CSS px wide at (100, 50): CSS (110, 60) → image (20, 20).
        assert_eq!(to_image_coords((110.0, 60.0), (100.0, 50.0), (224.0, 148.0), (448, 296)), (20.0, 20.0));
    }
}
