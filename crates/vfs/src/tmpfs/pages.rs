//! Where tmpfs keeps file data and long symlink targets: whole pages from a
//! [`PageStore`]. The kernel's store hands out physical frames (reached
//! through the direct map), so a full tmpfs holds frames, not kernel heap;
//! [`HeapPages`] is the store for host tests and simulators.

use alloc::vec::Vec;

/// Bytes in one page, the unit tmpfs allocates and charges in.
pub const PAGE_SIZE: usize = 4096;

/// A page handed out by a [`PageStore`] (a physical address in the kernel).
pub type PageId = u64;

/// A supply of zero-filled pages. Every page tmpfs holds came from
/// [`PageStore::alloc`] and goes back through [`PageStore::free`] exactly
/// once; offsets and lengths passed to `read`/`write` stay inside the page.
pub trait PageStore: Send {
    /// A page filled with zeros, or `None` when memory is exhausted.
    fn alloc(&mut self) -> Option<PageId>;
    /// Gives `page` back.
    fn free(&mut self, page: PageId);
    /// Copies `out.len()` bytes at `offset` in `page` into `out`.
    fn read(&self, page: PageId, offset: usize, out: &mut [u8]);
    /// Copies `data` into `page` at `offset`.
    fn write(&mut self, page: PageId, offset: usize, data: &[u8]);

    /// Sets `len` bytes at `offset` in `page` to zero.
    fn zero(&mut self, page: PageId, offset: usize, len: usize) {
        static ZEROS: [u8; PAGE_SIZE] = [0; PAGE_SIZE];
        self.write(page, offset, &ZEROS[..len]);
    }
}

/// Pages on the heap, for tests and hosted use. An optional page limit
/// makes `alloc` fail the way an exhausted frame pool does.
#[derive(Default)]
pub struct HeapPages {
    pages: Vec<Option<Vec<u8>>>,
    free_ids: Vec<PageId>,
    live: usize,
    limit: Option<usize>,
}

impl HeapPages {
    /// A store that refuses to hold more than `pages` pages at once.
    pub fn with_limit(pages: usize) -> HeapPages {
        HeapPages {
            limit: Some(pages),
            ..HeapPages::default()
        }
    }

    /// Pages currently handed out.
    pub fn live(&self) -> usize {
        self.live
    }

    fn page(&self, id: PageId) -> &[u8] {
        match self.pages.get(id as usize) {
            Some(Some(p)) => p,
            _ => panic!("page {id} is not allocated"),
        }
    }
}

impl PageStore for HeapPages {
    fn alloc(&mut self) -> Option<PageId> {
        if self.limit.is_some_and(|l| self.live >= l) {
            return None;
        }
        let mut page = Vec::new();
        page.try_reserve_exact(PAGE_SIZE).ok()?;
        page.resize(PAGE_SIZE, 0);
        let id = match self.free_ids.pop() {
            Some(id) => id,
            None => {
                self.pages.try_reserve(1).ok()?;
                // Room for the id when it is freed, so free never allocates.
                self.free_ids.try_reserve(self.pages.len() + 1).ok()?;
                self.pages.push(None);
                (self.pages.len() - 1) as PageId
            }
        };
        self.pages[id as usize] = Some(page);
        self.live += 1;
        Some(id)
    }

    fn free(&mut self, page: PageId) {
        match self.pages.get_mut(page as usize) {
            Some(slot @ Some(_)) => *slot = None,
            _ => panic!("double free of page {page}"),
        }
        self.live -= 1;
        self.free_ids.push(page);
    }

    fn read(&self, page: PageId, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.page(page)[offset..offset + out.len()]);
    }

    fn write(&mut self, page: PageId, offset: usize, data: &[u8]) {
        match self.pages.get_mut(page as usize) {
            Some(Some(p)) => p[offset..offset + data.len()].copy_from_slice(data),
            _ => panic!("page {page} is not allocated"),
        }
    }
}
