//! Random bytes for getrandom(2), /dev/urandom and AT_RANDOM.
//!
//! xoshiro256** seeded from RDRAND when the CPU has it, else from the TSC
//! at several boot points. Good enough for hash seeds and stack canaries;
//! not a cryptographic generator (documented in docs/syscalls.md).

use spin::Mutex;

static STATE: Mutex<[u64; 4]> = Mutex::new([
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0x2545_f491_4f6c_dd1d,
]);

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Mixes fresh entropy into the state.
pub fn seed() {
    let mut x = hal::cpu::rdtsc() ^ hal::cpu::rdrand().unwrap_or(0);
    let mut s = STATE.lock();
    for w in s.iter_mut() {
        *w ^= splitmix(&mut x);
    }
}

fn next(s: &mut [u64; 4]) -> u64 {
    let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    r
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    let mut s = STATE.lock();
    s[0] ^= hal::cpu::rdtsc();
    for chunk in buf.chunks_mut(8) {
        let v = next(&mut s).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}
