//! Toroidal coordinates: the cells of a torus, with wrap-around.

/// A cell coordinate `(x, y, z)`; each axis is below 256.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Coord {
    /// Axis 0.
    pub x: u8,
    /// Axis 1.
    pub y: u8,
    /// Axis 2.
    pub z: u8,
}

/// The shape of a torus's cell lattice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lattice {
    dims: [u16; 3],
}

impl Lattice {
    /// A lattice of `x × y × z` cells; each dimension is clamped to 1..=256.
    pub fn new(x: u16, y: u16, z: u16) -> Self {
        let c = |d: u16| d.clamp(1, 256);
        Lattice {
            dims: [c(x), c(y), c(z)],
        }
    }

    /// Number of cells.
    pub fn cells(&self) -> u32 {
        self.dims.iter().map(|&d| u32::from(d)).product()
    }

    /// Wrap arbitrary signed coordinates onto the lattice.
    pub fn wrap(&self, x: i64, y: i64, z: i64) -> Coord {
        let w = |v: i64, d: u16| v.rem_euclid(i64::from(d)) as u8;
        Coord {
            x: w(x, self.dims[0]),
            y: w(y, self.dims[1]),
            z: w(z, self.dims[2]),
        }
    }

    /// The neighbour of `c` displaced by `(dx, dy, dz)`, wrapping around.
    pub fn offset(&self, c: Coord, dx: i64, dy: i64, dz: i64) -> Coord {
        self.wrap(
            i64::from(c.x) + dx,
            i64::from(c.y) + dy,
            i64::from(c.z) + dz,
        )
    }

    /// Linear index of a cell (`(z·Y + y)·X + x`), after wrapping.
    pub fn index(&self, c: Coord) -> u32 {
        let c = self.wrap(c.x.into(), c.y.into(), c.z.into());
        let [dx, dy, _] = self.dims.map(u32::from);
        (u32::from(c.z) * dy + u32::from(c.y)) * dx + u32::from(c.x)
    }

    /// The cell a value hashes to: used to give a process a home when it
    /// arrives from another torus whose lattice may differ.
    pub fn home_for(&self, h: u64) -> Coord {
        let [dx, dy, dz] = self.dims.map(u64::from);
        Coord {
            x: (h % dx) as u8,
            y: ((h / dx) % dy) as u8,
            z: ((h / dx / dy) % dz) as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_every_axis() {
        let l = Lattice::new(4, 3, 2);
        assert_eq!(l.cells(), 24);
        let c = l.wrap(-1, 3, 5);
        assert_eq!(c, Coord { x: 3, y: 0, z: 1 });
        assert_eq!(l.offset(c, 1, -1, 1), Coord { x: 0, y: 2, z: 0 });
        assert_eq!(l.index(Coord { x: 3, y: 2, z: 1 }), 23);
    }

    #[test]
    fn homes_are_in_range() {
        let l = Lattice::new(5, 7, 3);
        for h in 0..1000u64 {
            assert!(l.index(l.home_for(h.wrapping_mul(0x9E37_79B9_7F4A_7C15))) < l.cells());
        }
    }
}
