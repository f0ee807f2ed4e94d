//! Real PNG images without an image library: a minimal encoder (8-bit RGB,
//! zlib from `miniz_oxide`, chunk CRC-32 computed here) and a painter
//! whose picture depends on the prompt and the seed, so a local run shows a
//! different image per prompt.

/// CRC-32 (IEEE), as PNG chunks need.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// Encodes `rgb` (row-major, 3 bytes per pixel) as a PNG.
pub fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for y in 0..height as usize {
        raw.push(0); // filter: none
        raw.extend_from_slice(&rgb[y * row..(y + 1) * row]);
    }
    // zlib (header, deflate, Adler-32), fast level: the bands compress well.
    let z = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 1);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A `width` x `height` picture that depends on `prompt` and `seed`: two
/// colours from their hash, blended in bands whose angle and width also
/// come from it.
pub fn paint(prompt: &str, seed: u64, width: u32, height: u32) -> Vec<u8> {
    // FNV-1a over the prompt and the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in prompt.bytes().chain(seed.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let byte = |i: u32| ((h >> (i * 8)) & 0xFF) as u8;
    let (c1, c2) = ([byte(0), byte(1), byte(2)], [byte(3), byte(4), byte(5)]);
    let (dx, dy) = (u32::from(byte(6) % 7) + 1, u32::from(byte(7) % 5) + 1);
    let band = 16 + u32::from(byte(5) % 48);
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let t = ((x * dx + y * dy) / band) % 2;
            let shade = u16::try_from((x + y) % 256).unwrap_or(0);
            let c = if t == 0 { c1 } else { c2 };
            for ch in c {
                rgb.push(((u16::from(ch) * 3 + shade) / 4) as u8);
            }
        }
    }
    encode_rgb(width, height, &rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_crc() {
        assert_eq!(crc32(&[b"IEND"]), 0xAE42_6082);
    }

    #[test]
    fn pictures_depend_on_prompt_seed_and_size() {
        let a = paint("a café", 1, 64, 32);
        assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&a[16..24], &[0, 0, 0, 64, 0, 0, 0, 32]);
        assert_eq!(a, paint("a café", 1, 64, 32));
        assert_ne!(a, paint("a café", 2, 64, 32));
        assert_ne!(a, paint("a pyramid", 1, 64, 32));
        let big = paint("x", 3, 300, 300);
        assert!(big.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
        // The pixels come back out of the IDAT chunk.
        let idat_len = u32::from_be_bytes(big[33..37].try_into().unwrap()) as usize;
        assert_eq!(&big[37..41], b"IDAT");
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&big[41..41 + idat_len]).unwrap();
        assert_eq!(raw.len(), (300 * 3 + 1) * 300);
    }
}
