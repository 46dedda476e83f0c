//! /proc/net/unix, as Linux prints it (net/unix/af_unix.c,
//! unix_seq_show): one line per socket, the kernel address hidden as with
//! kptr_restrict, listening sockets flagged __SO_ACCEPTCON.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::{Role, ALL};

/// __SO_ACCEPTCON.
const ACCEPTCON: u32 = 0x10000;
/// socket_state: SS_UNCONNECTED, SS_CONNECTED.
const SS_UNCONNECTED: u32 = 1;
const SS_CONNECTED: u32 = 3;

/// AF_UNIX sockets alive (/proc/net/sockstat's share).
pub fn count() -> usize {
    ALL.lock().len()
}

pub fn net_unix() -> String {
    let socks: Vec<_> = ALL.lock().values().filter_map(|w| w.upgrade()).collect();
    let mut out = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
    for s in socks {
        let (flags, state, refs, name) = {
            let st = s.st.lock();
            let (flags, state, refs) = match st.role {
                Role::Listening { .. } => (ACCEPTCON, SS_UNCONNECTED, 2),
                Role::Connected => (0, SS_CONNECTED, 3),
                Role::Unconnected if st.peer.is_some() => (0, SS_CONNECTED, 3),
                Role::Unconnected => (0, SS_UNCONNECTED, 2),
            };
            let name = match (&st.name, &st.shown_name) {
                (Some(n), _) => Some(n.proc_name()),
                (None, Some(raw)) => Some(super::addr::proc_name_of(raw)),
                _ => None,
            };
            (flags, state, refs, name)
        };
        out += &format!(
            "0000000000000000: {refs:08X} 00000000 {flags:08X} {:04X} {state:02X} {:5}",
            s.ty, s.ino
        );
        if let Some(n) = name {
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(&n));
        }
        out.push('\n');
    }
    out
}
