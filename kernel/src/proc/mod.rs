//! Processes (the roadmap's RSEProcess): identity, relations, run state,
//! kernel context, and the per-process resources (memory, files, signals).
//!
//! A `Process` is one thread, as Linux's task_struct: threads of one
//! process (`clone(CLONE_THREAD)`) are `Process`es sharing a
//! [`ThreadGroup`], whose id (tgid) is the pid of its first thread, the
//! leader. Its home is a torus and a lattice cell on it (DESIGN.md,
//! "toroidal coordinates"); the torus decides where it runs and which
//! frame pool backs its memory.

pub mod altstack;
pub mod braid;
pub mod cpu;
pub mod cputime;
pub mod cred;
pub mod exit;
pub mod fork;
pub mod limits;
pub mod mailbox;
pub mod oom;
pub mod replica;
pub mod robust;
pub mod sched;
pub mod signal;
pub mod sigwait;
pub mod ticket;
pub mod timers;
pub mod torus;
pub mod work;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

use crate::fs::fdtable::FdTable;
use crate::mm::shared::SharedMm;
use sched::WaitQueue;
use signal::SignalState;

/// A process id.
pub type Pid = u32;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// On the run queue.
    Runnable,
    /// On a CPU.
    Running,
    /// On a CPU, about to sleep (queued on a wait queue, not yet switched
    /// out): a wake-up now just sets it Running again.
    Blocking,
    /// Waiting on a wait queue, off every CPU.
    Sleeping,
    /// Exited, waiting to be reaped.
    Zombie,
}

/// Parent, group, session and children.
pub struct Relations {
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    pub children: Vec<Arc<Process>>,
}

/// Filesystem context: current directory and umask.
#[derive(Clone)]
pub struct FsContext {
    pub cwd: crate::fs::cwd::Cwd,
    pub umask: u32,
}

/// What ps/top show, and scheduling attributes.
#[derive(Clone)]
pub struct Info {
    pub comm: String,
    pub cmdline: Vec<u8>,
    /// Path of the executable (/proc/<pid>/exe).
    pub exe: Vec<u8>,
    /// Home torus and lattice cell.
    pub torus: usize,
    pub cell: (u8, u8, u8),
    pub start_ns: u64,
}

/// Scheduling state kept with the process.
pub struct SchedSlot {
    /// Its parameters (always the wanted ones) and, while it sleeps, its
    /// run-queue state (the queue holds that while it is queued or runs).
    pub entity: runq::Entity,
}

impl SchedSlot {
    /// Takes back the run-queue state of a process going to sleep,
    /// keeping parameters set while it ran.
    pub fn store(&mut self, e: runq::Entity) {
        let wanted = self.entity.params;
        self.entity = e;
        if e.params != wanted {
            self.entity.set_params(wanted);
        }
    }
}

/// What the threads of one process share besides memory and files.
pub struct ThreadGroup {
    /// The threads in the process table: the leader until its parent
    /// reaps the process, the others until they exit (nobody waits for a
    /// thread). The leader's entry is a cycle that the reap breaks.
    pub threads: Mutex<Vec<Arc<Process>>>,
    /// Threads that have not exited: the process is a zombie for its
    /// parent only once this is 0.
    pub live: AtomicUsize,
    /// Set by exit_group, a fatal signal or execve: the other threads die
    /// as by SIGKILL, and the process's wait status is this one.
    pub exit: Mutex<Option<i32>>,
    /// Woken at each thread's exit (execve waits for the others).
    pub exited: WaitQueue,
    /// Set once the last thread has exited and the children have gone to
    /// init: the process is waitable.
    pub dead: AtomicBool,
    /// Resource limits (shared by the threads).
    pub limits: Mutex<limits::Limits>,
    /// /proc/PID/oom_score_adj (-1000..=1000), inherited by fork.
    pub oom_score_adj: core::sync::atomic::AtomicI32,
    /// Process-directed signals every thread blocked when they came.
    pub shared_sig: Mutex<signal::SharedPending>,
    /// Set (for good) once one of its threads has read or polled a
    /// signalfd: only then does a signal to a thread of the process wake
    /// the pollers' queue (`signal::wake_signalfd_waiters`).
    pub signalfd_used: AtomicBool,
    /// CPU time of its threads that have exited (ns).
    pub exited_cpu_ns: AtomicU64,
}

impl ThreadGroup {
    /// The threads, without holding the lock afterwards.
    pub fn snapshot(&self) -> Vec<Arc<Process>> {
        self.threads.lock().clone()
    }
}

/// One thread (of a process with one or more).
pub struct Process {
    /// The thread id (gettid); the process id for the group's leader.
    pub pid: Pid,
    /// The process id (getpid): the leader's pid.
    pub tgid: Pid,
    pub group: Arc<ThreadGroup>,
    pub run: Mutex<RunState>,
    /// Saved kernel RSP while switched out; 0 while on a CPU (the switch
    /// publishes it last, so another CPU may resume the process only once
    /// it is nonzero).
    pub ctx: AtomicU64,
    /// Even while it waits in a run queue, odd otherwise (`ticket`).
    pub ticket: AtomicU64,
    /// The torus whose queue holds it or whose CPU runs it.
    torus: AtomicU32,
    /// CPUs (tori) it may run on, one bit each.
    affinity: AtomicU64,
    pub sched: Mutex<SchedSlot>,
    /// Freed with the last reference (never while a CPU runs on it: see
    /// the dead lists in `torus`).
    _kstack: hal::context::KernelStack,
    _live: crate::objects::Live,
    kstack_top: u64,
    fpu: hal::percpu::FpuArea,
    /// The user FS and GS bases, saved when it leaves a CPU and loaded
    /// when it enters one (they are per process, not per CPU).
    fs_base: AtomicU64,
    gs_base: AtomicU64,
    /// None once the process has exited.
    pub mm: Mutex<Option<Arc<SharedMm>>>,
    pub files: Mutex<Arc<Mutex<FdTable>>>,
    /// Shared by CLONE_FS (threads), copied otherwise.
    pub fs: Arc<Mutex<FsContext>>,
    pub rel: Mutex<Relations>,
    /// getpid, gettid and, for a leader, `rel.ppid` (written only with
    /// `rel` locked, together with it): what getppid and the light
    /// syscall path read without a lock.
    ids: hal::syscall::TaskIds,
    /// Wait status (as wait4 reports it) once a zombie.
    pub exit_status: Mutex<Option<i32>>,
    pub sig: Mutex<SignalState>,
    /// The parent sleeps here waiting for a child to change state.
    pub child_wait: WaitQueue,
    pub info: Mutex<Info>,
    /// Set when a vfork child has exec'd or exited: the parent resumes.
    pub vfork_done: Mutex<bool>,
    pub vfork_wait: WaitQueue,
    pub clear_child_tid: AtomicU64,
    /// set_robust_list's head (0: none); walked at exit (robust.rs).
    pub robust_list: AtomicU64,
    /// What it waits for while it sleeps in FUTEX_WAIT.
    pub futex: crate::syscall::futex::Slot,
    /// CLONE_CHILD_SETTID: written in the child's own memory on first run.
    pub pending_set_tid: Mutex<Option<u64>>,
    /// CPU time to the nanosecond (CPU-time clocks, getrusage).
    pub cpu_time: cputime::CpuTime,
    /// Total CPU time charged, in timer ticks (user + system, not split yet).
    pub ticks: AtomicU64,
    /// Context switches: it went to sleep (voluntary) or was switched out
    /// while runnable (preempted or yielding), as Linux's nvcsw/nivcsw.
    /// Only the CPU switching it out counts, so a load and a store do.
    pub switches: ContextSwitches,
    /// Its ids, replaced whole on a change (`cred`).
    cred: Mutex<Arc<cred::Cred>>,
    /// prctl(PR_SET_NO_NEW_PRIVS): execve never grants privileges (set-id
    /// bits are ignored); inherited and never cleared.
    no_new_privs: AtomicBool,
}

static TABLE: Mutex<BTreeMap<Pid, Arc<Process>>> = Mutex::new(BTreeMap::new());
static NEXT_PID: AtomicU32 = AtomicU32::new(1);
/// Most processes at once (a fork bomb gets EAGAIN, the kernel lives).
pub const MAX_PROCESSES: usize = 4096;

/// Parts of a new process that differ between boot, fork and clone.
pub struct NewProcess {
    /// The new thread group's oom_score_adj (the parent's).
    pub oom_score_adj: i32,
    pub frame: hal::idt::TrapFrame,
    pub fpu: hal::percpu::FpuArea,
    pub fs_base: u64,
    pub gs_base: u64,
    pub mm: Arc<SharedMm>,
    pub files: Arc<Mutex<FdTable>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub rel: Relations,
    /// A new thread of this group (CLONE_THREAD); None for a new process.
    /// The caller adds the thread to the group's list.
    pub group: Option<(Pid, Arc<ThreadGroup>)>,
    pub sig: SignalState,
    /// Limits of a new process (ignored for a new thread).
    pub limits: limits::Limits,
    pub info: Info,
    /// Scheduling parameters and CPU mask (inherited at fork).
    pub params: runq::Params,
    pub affinity: u64,
    /// Credentials and no_new_privs (the parent's at fork and clone).
    pub cred: Arc<cred::Cred>,
    pub no_new_privs: bool,
}

impl Process {
    /// Creates a process that will enter user mode with `n.frame` when
    /// first scheduled, and registers it in the process table.
    pub fn spawn(n: NewProcess) -> abi::KResult<Arc<Process>> {
        let mut table = TABLE.lock();
        if table.len() >= MAX_PROCESSES {
            return Err(abi::Errno::EAGAIN);
        }
        let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        let mut kstack = hal::context::KernelStack::new().ok_or(abi::Errno::EAGAIN)?;
        let rsp = kstack.prepare_first_run(&n.frame);
        let kstack_top = kstack.top();
        let mut rel = n.rel;
        if rel.pgid == 0 {
            rel.pgid = pid;
        }
        if rel.sid == 0 {
            rel.sid = pid;
        }
        let (tgid, group, new_group) = match n.group {
            Some((tgid, g)) => (tgid, g, false),
            None => (
                pid,
                Arc::new(ThreadGroup {
                    threads: Mutex::new(Vec::new()),
                    live: AtomicUsize::new(1),
                    exit: Mutex::new(None),
                    exited: WaitQueue::new(),
                    dead: AtomicBool::new(false),
                    limits: Mutex::new(n.limits),
                    oom_score_adj: core::sync::atomic::AtomicI32::new(n.oom_score_adj),
                    shared_sig: Mutex::new(signal::SharedPending::default()),
                    signalfd_used: AtomicBool::new(false),
                    exited_cpu_ns: AtomicU64::new(0),
                }),
                true,
            ),
        };
        let p = Arc::new(Process {
            pid,
            tgid,
            group,
            run: Mutex::new(RunState::Runnable),
            ctx: AtomicU64::new(rsp),
            ticket: AtomicU64::new(1),
            torus: AtomicU32::new(0),
            affinity: AtomicU64::new(n.affinity),
            sched: Mutex::new(SchedSlot {
                entity: runq::Entity::new(n.params),
            }),
            _kstack: kstack,
            _live: crate::objects::Live::new(crate::objects::Obj::Task),
            kstack_top,
            fpu: n.fpu,
            fs_base: AtomicU64::new(n.fs_base),
            gs_base: AtomicU64::new(n.gs_base),
            mm: Mutex::new(Some(n.mm)),
            files: Mutex::new(n.files),
            fs: n.fs,
            ids: hal::syscall::TaskIds::new(tgid, pid, (pid == tgid).then_some(rel.ppid)),
            rel: Mutex::new(rel),
            exit_status: Mutex::new(None),
            sig: Mutex::new(n.sig),
            child_wait: WaitQueue::new(),
            info: Mutex::new(n.info),
            vfork_done: Mutex::new(false),
            vfork_wait: WaitQueue::new(),
            clear_child_tid: AtomicU64::new(0),
            robust_list: AtomicU64::new(0),
            futex: crate::syscall::futex::Slot::new(),
            pending_set_tid: Mutex::new(None),
            cpu_time: cputime::CpuTime::default(),
            ticks: AtomicU64::new(0),
            switches: ContextSwitches::default(),
            cred: Mutex::new(n.cred),
            no_new_privs: AtomicBool::new(n.no_new_privs),
        });
        table.insert(pid, p.clone());
        drop(table);
        if new_group {
            p.group.threads.lock().push(p.clone());
        }
        Ok(p)
    }

    /// Whether it leads its thread group (its pid is the process id).
    pub fn is_leader(&self) -> bool {
        self.pid == self.tgid
    }

    /// The group's leader, which holds the process's relations (parent,
    /// children, process group); itself when it is the leader. The
    /// leader stays in the table until the process is reaped, which is
    /// after every thread has exited.
    pub fn leader(self: &Arc<Self>) -> Arc<Process> {
        if self.is_leader() {
            return self.clone();
        }
        lookup(self.tgid).unwrap_or_else(|| self.clone())
    }

    /// Whether the whole process has exited (waitable by its parent).
    pub fn is_dead_process(&self) -> bool {
        self.group.dead.load(Ordering::Acquire)
    }

    /// The torus it is queued on or runs on.
    pub fn torus(&self) -> usize {
        self.torus.load(Ordering::Relaxed) as usize
    }

    /// The CPUs it may run on.
    pub fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }

    /// Sets the CPU mask (the scheduler moves it: `sched::set_affinity`).
    pub fn set_affinity_mask(&self, m: u64) {
        self.affinity.store(m, Ordering::Relaxed);
    }

    /// Its scheduling parameters.
    pub fn params(&self) -> runq::Params {
        hal::cpu::without_interrupts(|| self.sched.lock().entity.params)
    }

    /// Moves it to torus `t` (only while it is on no CPU and in no queue,
    /// or by its own torus's scheduler).
    pub fn set_torus(&self, t: usize) {
        self.torus.store(t as u32, Ordering::Relaxed);
    }

    /// The run state. Interrupt handlers never take this lock, but the
    /// scheduler does with interrupts off, so everyone else must too.
    pub fn run_state(&self) -> RunState {
        hal::cpu::without_interrupts(|| *self.run.lock())
    }

    /// Whether the process has exited.
    pub fn is_zombie(&self) -> bool {
        self.run_state() == RunState::Zombie
    }

    /// Makes this process the one the CPU runs: kernel stack and FPU area
    /// for the entry paths, TLS base, page tables.
    pub fn install_on_cpu(&self) {
        hal::percpu::set_current_task(self.kstack_top, &self.fpu, &self.ids);
        hal::percpu::set_user_fs_base(self.fs_base.load(Ordering::Relaxed));
        hal::percpu::set_user_gs_base(self.gs_base.load(Ordering::Relaxed));
        // The root only: never the address space's lock, which another
        // CPU may hold while it waits for this one (mm::shared).
        let root = self.mm.lock().as_ref().map(|mm| mm.root());
        if let Some(root) = root {
            hal::addrspace::activate_root(root);
        }
    }

    /// Records the user TLS base before switching away.
    pub fn save_user_tls(&self) {
        self.fs_base
            .store(hal::percpu::user_fs_base(), Ordering::Relaxed);
        self.gs_base
            .store(hal::percpu::user_gs_base(), Ordering::Relaxed);
    }

    /// Sets the user TLS base (the process is running).
    pub fn set_fs_base(&self, v: u64) {
        self.fs_base.store(v, Ordering::Relaxed);
        hal::percpu::set_user_fs_base(v);
    }

    /// Sets the user GS base (the process is running).
    pub fn set_gs_base(&self, v: u64) {
        self.gs_base.store(v, Ordering::Relaxed);
        hal::percpu::set_user_gs_base(v);
    }

    /// The saved user FPU state (for fork and signal frames).
    pub fn fpu(&self) -> &hal::percpu::FpuArea {
        &self.fpu
    }

    /// Current memory (only called on a live process).
    pub fn mm(&self) -> Arc<SharedMm> {
        self.mm.lock().clone().expect("a live process has memory")
    }

    /// Current file table.
    pub fn files(&self) -> Arc<Mutex<FdTable>> {
        self.files.lock().clone()
    }

    /// The open file at descriptor `fd`: one reference taken (the file's),
    /// none to the table (read and write look one up on every call).
    pub fn file_at(&self, fd: i32) -> abi::KResult<Arc<crate::fs::file::OpenFile>> {
        self.files.lock().lock().get(fd)
    }

    /// Whether a signal is pending that is not blocked.
    pub fn has_deliverable_signal(&self) -> bool {
        let s = self.sig.lock();
        s.deliverable().is_some()
            || self.group.shared_sig.lock().pending & !(s.mask & !signal::UNBLOCKABLE) != 0
    }

    /// Its credentials as of now.
    pub fn cred(&self) -> Arc<cred::Cred> {
        self.cred.lock().clone()
    }

    /// Publishes new credentials (set*id, execve of a set-id program).
    pub fn set_cred(&self, c: cred::Cred) {
        self.replace_cred(Arc::new(c));
    }

    /// Swaps in `c` (a temporary override: access(2)).
    pub fn replace_cred(&self, c: Arc<cred::Cred>) {
        *self.cred.lock() = c;
    }

    /// Whether execve may not grant privileges.
    pub fn no_new_privs(&self) -> bool {
        self.no_new_privs.load(Ordering::Relaxed)
    }

    /// prctl(PR_SET_NO_NEW_PRIVS, 1): one way only.
    pub fn set_no_new_privs(&self) {
        self.no_new_privs.store(true, Ordering::Relaxed);
    }

    /// Parent pid (of the process: reparenting changes the leader's).
    pub fn ppid(&self) -> Pid {
        if !self.is_leader() {
            if let Some(l) = lookup(self.tgid) {
                return l.own_ppid();
            }
        }
        self.own_ppid()
    }

    /// The parent recorded on this task itself: the process's parent when
    /// this is the leader (a load), a thread's own record otherwise.
    pub fn own_ppid(&self) -> Pid {
        self.ids.ppid().unwrap_or_else(|| self.rel.lock().ppid)
    }

    /// Makes the light path answer getpid/gettid with `pid` and getppid
    /// with `ppid`: a process moved here answers with its home's ids.
    pub fn present_as(&self, pid: Pid, ppid: Pid) {
        self.ids.set_ids(pid, pid);
        self.ids.set_ppid(ppid);
    }

    /// Gives the process a new parent (orphan reparenting).
    pub fn set_ppid(&self, ppid: Pid) {
        let mut r = self.rel.lock();
        r.ppid = ppid;
        if self.is_leader() {
            self.ids.set_ppid(ppid);
        }
    }
}

/// Looks up a live (or zombie) process.
pub fn lookup(pid: Pid) -> Option<Arc<Process>> {
    TABLE.lock().get(&pid).cloned()
}

/// Removes a reaped process from the table.
pub fn remove(pid: Pid) {
    TABLE.lock().remove(&pid);
}

/// A snapshot of all processes, their leaders only (for /proc, kill(-1),
/// process groups).
pub fn all() -> Vec<Arc<Process>> {
    TABLE
        .lock()
        .values()
        .filter(|p| p.is_leader())
        .cloned()
        .collect()
}

/// (table entries, thread-group leaders among them): threads and
/// processes as /proc/kobjects reports them.
pub fn table_counts() -> (usize, usize) {
    let t = TABLE.lock();
    (t.len(), t.values().filter(|p| p.is_leader()).count())
}

/// Number of processes.
pub fn count() -> usize {
    TABLE.lock().len()
}

/// How many tasks have real uid `uid` (RLIMIT_NPROC's count).
pub fn count_of_uid(uid: u32) -> usize {
    TABLE
        .lock()
        .values()
        .filter(|p| p.cred.lock().ruid == uid)
        .count()
}

/// A process's context switch counts (see [`Process::switches`]).
#[derive(Default)]
pub struct ContextSwitches {
    voluntary: AtomicU64,
    involuntary: AtomicU64,
}

impl ContextSwitches {
    /// Counts one switch away from the process: `slept` when it went to
    /// sleep. Called only by the CPU switching it out.
    pub fn count(&self, slept: bool) {
        let c = if slept {
            &self.voluntary
        } else {
            &self.involuntary
        };
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// (voluntary, involuntary).
    pub fn get(&self) -> (u64, u64) {
        (
            self.voluntary.load(Ordering::Relaxed),
            self.involuntary.load(Ordering::Relaxed),
        )
    }
}
