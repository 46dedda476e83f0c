//! `netdebug.echo=PORT`: a TCP echo responder inside the kernel, so the
//! harness can prove that TCP flows between the host and the guest through
//! the real NIC before user-space sockets exist. It is a test aid behind a
//! command-line flag, not a socket API: programs cannot see it.

use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use spin::Mutex;

use super::stack;

/// Listening sockets on the port: smoltcp has no accept queue, a socket
/// serves one connection, so several listen at once and one closing does
/// not refuse the next connection.
static ECHO: Mutex<(Vec<SocketHandle>, u16)> = Mutex::new((Vec::new(), 0));
const SOCKETS: usize = 4;

fn listening_socket(port: u16) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 4096]),
        tcp::SocketBuffer::new(vec![0; 4096]),
    );
    // A fresh socket listens on a valid port: this cannot fail.
    let _ = s.listen(port);
    s
}

/// Starts listening on `port`.
pub fn start(port: u16) {
    if port == 0 {
        return;
    }
    let handles = stack::with(|_, sockets| {
        (0..SOCKETS)
            .map(|_| sockets.add(listening_socket(port)))
            .collect::<Vec<_>>()
    });
    if let Some(h) = handles {
        *ECHO.lock() = (h, port);
        crate::klog!("net: debug echo responder on TCP port {port}");
    }
}

/// Echoes what arrived, closes after the peer does, listens again.
pub fn service() {
    let (handles, port) = {
        let g = ECHO.lock();
        (g.0.clone(), g.1)
    };
    if handles.is_empty() {
        return;
    }
    stack::with(|_, sockets| {
        for &h in &handles {
            echo(sockets.get_mut::<tcp::Socket>(h), port);
        }
    });
}

fn echo(s: &mut tcp::Socket, port: u16) {
    let mut buf = [0u8; 512];
    while s.can_recv() && s.can_send() {
        let room = s.send_capacity() - s.send_queue();
        let want = buf.len().min(room);
        match s.recv_slice(&mut buf[..want]) {
            Ok(n) if n > 0 => {
                let _ = s.send_slice(&buf[..n]);
            }
            _ => break,
        }
    }
    // The peer closed and everything it sent was echoed: our FIN goes
    // after the queued data.
    if s.state() == tcp::State::CloseWait && !s.can_recv() {
        s.close();
    }
    if s.state() == tcp::State::Closed {
        let _ = s.listen(port);
    }
}
