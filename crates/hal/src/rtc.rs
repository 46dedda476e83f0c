//! The CMOS real-time clock (MC146818, present on `pc`, `q35` and
//! `microvm`): read once at boot to set CLOCK_REALTIME; the TSC keeps
//! time afterwards, as Linux does.

use x86_64::instructions::port::Port;

/// Status register A: bit 7 = an update is in progress.
const STATUS_A: u8 = 0x0a;
/// Status register B: bit 2 = binary (not BCD), bit 1 = 24-hour.
const STATUS_B: u8 = 0x0b;

fn read(reg: u8) -> u8 {
    let mut index = Port::<u8>::new(0x70);
    let mut data = Port::<u8>::new(0x71);
    // SAFETY: selects a CMOS register (NMI left enabled: bit 7 clear) and
    // reads it; only this boot-time code touches the CMOS ports.
    unsafe {
        index.write(reg & 0x7f);
        data.read()
    }
}

/// The raw fields: seconds, minutes, hours, day, month, year, century.
fn fields() -> [u8; 7] {
    [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].map(read)
}

/// Days from 1970-01-01 to year-month-day (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch, or None if the clock reads nonsense
/// (absent: all 0xff) or never settles.
pub fn unix_seconds() -> Option<u64> {
    // Read until two reads agree, each outside an update cycle.
    let mut last = None;
    for _ in 0..1000 {
        while read(STATUS_A) & 0x80 != 0 {
            core::hint::spin_loop();
        }
        let now = fields();
        if last == Some(now) {
            break;
        }
        last = Some(now);
    }
    let f = last?;
    let b = read(STATUS_B);
    let bin = |v: u8| {
        if b & 0x04 != 0 {
            v
        } else {
            (v & 0x0f) + (v >> 4) * 10
        }
    };
    let pm = b & 0x02 == 0 && f[2] & 0x80 != 0;
    let mut hour = bin(f[2] & 0x7f);
    if b & 0x02 == 0 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let (sec, min, day, month) = (bin(f[0]), bin(f[1]), bin(f[3]), bin(f[4]));
    let century = match bin(f[6]) {
        c @ 19..=29 => u32::from(c),
        _ => 20,
    };
    let year = century * 100 + u32::from(bin(f[5]));
    if sec > 59 || min > 59 || hour > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), u32::from(month), u32::from(day));
    let s = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    u64::try_from(s).ok()
}
