//! A fast non-cryptographic hash of bytes, for the caches that must tell a file or a
//! source from an edited or different one: packed weights, compiled GPU programs.

/// A fast 64-bit hash of `bytes`: four independent multiply-rotate lanes over 8-byte words
/// (several GB/s per core), folded with the length. Not cryptographic: it tells a model
/// file from an edited or different one, it does not resist forgery.
pub fn content_hash(bytes: &[u8]) -> u64 {
    const P: [u64; 4] = [
        0x9e37_79b9_7f4a_7c15,
        0xc2b2_ae3d_27d4_eb4f,
        0x1656_67b1_9e37_79f9,
        0x85eb_ca77_c2b2_ae63,
    ];
    let mut lanes = P;
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let word = u64::from_le_bytes(chunk[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
            *lane = (*lane ^ word).wrapping_mul(P[i]).rotate_left(29);
        }
    }
    let mut tail = [0u8; 32];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    let mut h = bytes.len() as u64;
    for (i, lane) in lanes.iter().enumerate() {
        let word = u64::from_le_bytes(tail[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
        h = (h ^ lane.wrapping_add(word)).wrapping_mul(P[(i + 1) % 4]);
        h ^= h >> 31;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_sees_every_byte_and_the_length() {
        let base: [u8; 1000] = core::array::from_fn(|i| (i * 7) as u8);
        let h = content_hash(&base);
        for at in [0, 31, 32, 500, 999] {
            let mut b = base;
            b[at] ^= 0x10;
            assert_ne!(content_hash(&b), h, "byte {at}");
        }
        assert_ne!(content_hash(&base[..999]), h);
        assert_ne!(content_hash(&[]), content_hash(&[0]));
    }
}
