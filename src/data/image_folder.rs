//! A user's images in torchvision's `ImageFolder` layout: `DIR/train/<class>/*.png|jpg` and
//! `DIR/test/<class>/…`, classes numbered in name order as torchvision numbers them (those of
//! `train/`; `test/` may hold fewer). Any size and channel count, one for the whole folder: a
//! folder mixing gray and colour images is read in colour, as torchvision's loader reads every
//! image; an alpha channel is dropped. Files of other kinds are skipped, as torchvision skips them.
//! Each split is ordered round-robin over its classes, so that its first images (`--limit`) are a
//! class-balanced subset, as in the official MNIST and CIFAR-10 files.
use super::LabelledImages;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// The two splits of an image folder and its class names (label `i` is `classes[i]`).
#[derive(Debug)]
pub struct ImageFolder {
    pub classes: Vec<String>,
    pub train: LabelledImages,
    pub test: LabelledImages,
}

/// A decoded image: channel-major pixels and its `[C, H, W]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub shape: [i64; 3],
    pub pixels: Vec<u8>,
}

/// The image formats read: PNG (any bit depth, palette, alpha) and baseline or progressive JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    /// The format a file name's extension says, if one that is read.
    pub fn of(name: &str) -> Option<Format> {
        let extension = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "png" => Some(Format::Png),
            "jpg" | "jpeg" => Some(Format::Jpeg),
            _ => None,
        }
    }
}

/// Decodes an image file's bytes to gray or RGB pixels, channel-major.
pub fn decode(bytes: &[u8], format: Format) -> std::result::Result<Decoded, String> {
    let (width, height, channels, interleaved) = match format {
        Format::Png => decode_png(bytes)?,
        Format::Jpeg => decode_jpeg(bytes)?,
    };
    let plane = width * height;
    if interleaved.len() != plane * channels {
        return Err(format!(
            "decoded {} bytes for a {width}×{height} image of {channels} channels",
            interleaved.len()
        ));
    }
    let mut pixels = vec![0u8; plane * channels];
    for (i, px) in interleaved.chunks_exact(channels).enumerate() {
        for (c, &value) in px.iter().enumerate() {
            pixels[c * plane + i] = value;
        }
    }
    Ok(Decoded {
        shape: [channels as i64, height as i64, width as i64],
        pixels,
    })
}

/// (width, height, channels, pixels interleaved), alpha dropped, 8 bits per channel.
fn decode_png(bytes: &[u8]) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("cannot decode PNG: {e}"))?;
    let mut buffer = vec![0u8; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buffer)
        .map_err(|e| format!("cannot decode PNG: {e}"))?;
    buffer.truncate(info.buffer_size());
    let (width, height) = (info.width as usize, info.height as usize);
    let (stored, kept) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::GrayscaleAlpha => (2, 1),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (4, 3),
        png::ColorType::Indexed => return Err("palette left unexpanded".to_string()),
    };
    let pixels = if stored == kept {
        buffer
    } else {
        buffer
            .chunks_exact(stored)
            .flat_map(|px| px[..kept].iter().copied())
            .collect()
    };
    Ok((width, height, kept, pixels))
}

/// (width, height, channels, pixels interleaved): gray JPEGs stay gray, others become RGB.
fn decode_jpeg(bytes: &[u8]) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    let cannot = |e| format!("cannot decode JPEG: {e:?}");
    let mut decoder = JpegDecoder::new(bytes);
    decoder.decode_headers().map_err(cannot)?;
    let (out, channels) = match decoder.get_input_colorspace() {
        Some(ColorSpace::Luma) => (ColorSpace::Luma, 1),
        _ => (ColorSpace::RGB, 3),
    };
    decoder.set_options(DecoderOptions::default().jpeg_set_out_colorspace(out));
    let pixels = decoder.decode().map_err(cannot)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| "JPEG without dimensions".to_string())?;
    Ok((width, height, channels, pixels))
}

/// An image of a split, before the split is assembled. `name` is its path within the folder or
/// archive, which errors name.
#[derive(Debug)]
pub(crate) struct Entry {
    pub test: bool,
    pub class: usize,
    pub name: String,
    pub image: Decoded,
}

/// Orders entries split by split, round-robin over the classes: the first file of every class,
/// then the second, and so on, each class in file-name order.
pub(crate) fn interleave_classes(entries: &mut Vec<Entry>) {
    entries.sort_by(|a, b| (a.test, a.class, &a.name).cmp(&(b.test, b.class, &b.name)));
    let mut seen: BTreeMap<(bool, usize), usize> = BTreeMap::new();
    let mut ranked: Vec<(usize, Entry)> = entries
        .drain(..)
        .map(|entry| {
            let rank = seen.entry((entry.test, entry.class)).or_default();
            *rank += 1;
            (*rank, entry)
        })
        .collect();
    ranked.sort_by_key(|(rank, entry)| (entry.test, *rank, entry.class));
    entries.extend(ranked.into_iter().map(|(_, entry)| entry));
}

/// Stacks one split's entries (already ordered) into `u8` images and labels, checking that they
/// share one shape; `origin` is the folder or archive errors name.
pub(crate) fn assemble(entries: &[Entry], test: bool, origin: &Path) -> Result<LabelledImages> {
    let chosen: Vec<&Entry> = entries.iter().filter(|e| e.test == test).collect();
    let which = if test { "test" } else { "train" };
    let Some(first) = chosen.first() else {
        return Err(Error::data(
            origin,
            format!("holds no {which}/<class>/ PNG or JPEG images"),
        ));
    };
    let shape = first.image.shape;
    if let Some(odd) = chosen.iter().find(|e| e.image.shape != shape) {
        return Err(Error::data(
            origin,
            format!(
                "{} is {} but {} is {}: every image must have one size",
                odd.name,
                shape_text(odd.image.shape),
                first.name,
                shape_text(shape)
            ),
        ));
    }
    let labels: Vec<i64> = chosen.iter().map(|e| e.class as i64).collect();
    let pixels: Vec<u8> = chosen
        .iter()
        .flat_map(|e| e.image.pixels.iter().copied())
        .collect();
    let [c, h, w] = shape;
    Ok(LabelledImages::new(
        super::images_from_bytes(&pixels, [labels.len() as i64, c, h, w]),
        Tensor::from_slice(&labels).to_kind(Kind::Int64),
    ))
}

/// `C×H×W`, as errors and `data info` print a shape.
pub fn shape_text([c, h, w]: [i64; 3]) -> String {
    format!("{c}×{h}×{w}")
}

/// Reads `dir/train` and `dir/test`.
pub fn load(dir: &Path) -> Result<ImageFolder> {
    let train_dir = dir.join("train");
    let classes = subfolders(&train_dir)?;
    if classes.is_empty() {
        return Err(Error::data(
            &train_dir,
            "holds no class folders (expected train/<class>/*.png|jpg)",
        ));
    }
    let mut entries = Vec::new();
    for (split, test) in [("train", false), ("test", true)] {
        let split_dir = dir.join(split);
        for class_name in subfolders(&split_dir)? {
            let Some(class) = classes.iter().position(|c| *c == class_name) else {
                return Err(Error::data(
                    split_dir.join(&class_name),
                    format!("class '{class_name}' is not among train/'s classes"),
                ));
            };
            let before = entries.len();
            read_class(dir, split, &class_name, class, test, &mut entries)?;
            if entries.len() == before {
                return Err(Error::data(
                    split_dir.join(&class_name),
                    "holds no PNG or JPEG images",
                ));
            }
        }
    }
    promote_gray_to_rgb(&mut entries);
    interleave_classes(&mut entries);
    Ok(ImageFolder {
        classes,
        train: assemble(&entries, false, dir)?,
        test: assemble(&entries, true, dir)?,
    })
}

/// The names of `dir`'s subfolders, sorted.
fn subfolders(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Err(Error::data(
            dir,
            "not found: an image folder holds train/<class>/ and test/<class>/",
        ));
    }
    let mut names = Vec::new();
    for entry in read_dir(dir)? {
        if entry.path().is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let cannot = |e| Error::data(dir, format!("cannot list: {e}"));
    std::fs::read_dir(dir)
        .map_err(cannot)?
        .map(|entry| entry.map_err(cannot))
        .collect()
}

/// Decodes the images of `dir/split/class_name/` into `entries`.
fn read_class(
    dir: &Path,
    split: &str,
    class_name: &str,
    class: usize,
    test: bool,
    entries: &mut Vec<Entry>,
) -> Result<()> {
    for file in read_dir(&dir.join(split).join(class_name))? {
        let file_name = file.file_name().to_string_lossy().into_owned();
        let Some(format) = Format::of(&file_name) else {
            continue;
        };
        let path = file.path();
        let bytes =
            std::fs::read(&path).map_err(|e| Error::data(&path, format!("cannot read: {e}")))?;
        let image = decode(&bytes, format).map_err(|problem| Error::data(&path, problem))?;
        entries.push(Entry {
            test,
            class,
            name: format!("{split}/{class_name}/{file_name}"),
            image,
        });
    }
    Ok(())
}

/// Reads a folder mixing gray and colour images in colour (gray copied to three channels).
fn promote_gray_to_rgb(entries: &mut [Entry]) {
    if !entries.iter().any(|e| e.image.shape[0] == 3) {
        return;
    }
    for entry in entries.iter_mut().filter(|e| e.image.shape[0] == 1) {
        let [_, h, w] = entry.image.shape;
        entry.image = Decoded {
            shape: [3, h, w],
            pixels: entry.image.pixels.repeat(3),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes 8-bit pixels (interleaved) as a PNG of `color` type.
    fn png_bytes(width: u32, height: u32, color: png::ColorType, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
        writer.finish().unwrap();
        out
    }

    fn entry(test: bool, class: usize, name: &str) -> Entry {
        Entry {
            test,
            class,
            name: name.to_string(),
            image: Decoded {
                shape: [1, 1, 1],
                pixels: vec![0],
            },
        }
    }

    #[test]
    fn entries_interleave_the_classes() {
        let mut entries = vec![
            entry(false, 2, "0001"),
            entry(true, 0, "0001"),
            entry(false, 0, "0002"),
            entry(false, 1, "0001"),
            entry(false, 0, "0001"),
            entry(false, 0, "0003"),
            entry(true, 1, "0001"),
        ];
        interleave_classes(&mut entries);
        let order: Vec<_> = entries
            .iter()
            .map(|e| (e.test, e.class, e.name.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                (false, 0, "0001"),
                (false, 1, "0001"),
                (false, 2, "0001"),
                (false, 0, "0002"),
                (false, 0, "0003"),
                (true, 0, "0001"),
                (true, 1, "0001"),
            ]
        );
    }

    #[test]
    fn png_pixels_come_back_channel_major_without_alpha() {
        // 2×1 RGBA: red opaque, blue half transparent.
        let bytes = png_bytes(
            2,
            1,
            png::ColorType::Rgba,
            &[255, 0, 0, 255, 0, 0, 200, 128],
        );
        let image = decode(&bytes, Format::Png).unwrap();
        assert_eq!(image.shape, [3, 1, 2]);
        assert_eq!(image.pixels, vec![255, 0, 0, 0, 0, 200]);
        let gray = png_bytes(1, 2, png::ColorType::Grayscale, &[7, 9]);
        assert_eq!(
            decode(&gray, Format::Png).unwrap(),
            Decoded {
                shape: [1, 2, 1],
                pixels: vec![7, 9]
            }
        );
        let e = decode(&gray[..gray.len() / 2], Format::Png).unwrap_err();
        assert!(e.contains("cannot decode PNG"), "{e}");
        let e = decode(b"not a jpeg", Format::Jpeg).unwrap_err();
        assert!(e.contains("cannot decode JPEG"), "{e}");
    }

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(Format::of("a.PNG"), Some(Format::Png));
        assert_eq!(Format::of("b.jpeg"), Some(Format::Jpeg));
        assert_eq!(Format::of("c.JPG"), Some(Format::Jpeg));
        assert_eq!(Format::of("notes.txt"), None);
        assert_eq!(Format::of("README"), None);
    }
}
