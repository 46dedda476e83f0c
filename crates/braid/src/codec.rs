//! Little-endian field access on fixed-size records, and the shared
//! checksum / digest helpers. Offsets are compile-time constants checked
//! against the record length, so none of these can index out of bounds.

/// Why a record was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not exactly the record length.
    Length,
    /// Wrong magic number.
    Magic,
    /// Unsupported version.
    Version,
    /// CRC32C mismatch.
    Checksum,
    /// A field is out of range, or a reserved byte / unused slot is not zero.
    Field(&'static str),
}

pub(crate) fn get<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(get(b, off))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(get(b, off))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(get(b, off))
}

pub(crate) fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

pub(crate) fn all_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

/// CRC32C over `body`.
pub fn crc(body: &[u8]) -> u32 {
    const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    CASTAGNOLI.checksum(body)
}

/// 64-bit digest of a whole encoded record (FNV-1a then a final mix), used
/// for the projection chain.
pub fn record_digest(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h ^ (h >> 29)
}

/// Check a record's length, magic, version and trailing CRC32C.
pub(crate) fn check_frame(
    b: &[u8],
    len: usize,
    magic: u32,
    version: u16,
) -> Result<(), DecodeError> {
    if b.len() != len {
        return Err(DecodeError::Length);
    }
    if u32_at(b, 0) != magic {
        return Err(DecodeError::Magic);
    }
    if u16_at(b, 4) != version {
        return Err(DecodeError::Version);
    }
    if u32_at(b, len - 4) != crc(&b[..len - 4]) {
        return Err(DecodeError::Checksum);
    }
    Ok(())
}

/// Check a condition on a decoded field.
pub(crate) fn ensure(ok: bool, what: &'static str) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Field(what))
    }
}

#[cfg(test)]
mod crc_check {
    /// The CRC-32C check value of "123456789" (RFC 3720 / the catalogue).
    #[test]
    fn crc_is_castagnoli() {
        assert_eq!(super::crc(b"123456789"), 0xe306_9283);
    }
}
