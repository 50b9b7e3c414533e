//! Multi-producer, single-consumer channels: unbounded ([`channel`]) and
//! bounded ([`sync_channel`], senders block while it is full).
use super::mutex::deadline_after;
use super::{Condvar, Mutex};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

struct Shared<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: Option<usize>,
}

struct State<T> {
    q: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

/// The sending half.
pub struct Sender<T> {
    s: Arc<Shared<T>>,
}

/// The receiving half.
pub struct Receiver<T> {
    s: Arc<Shared<T>>,
}

/// The receiver is gone; the value comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError: the receiver was dropped")
    }
}

/// Why `send_timeout` gave the value back.
#[derive(PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the timeout passed.
    Timeout(T),
    /// The receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Disconnected(v) => v,
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("SendTimeoutError: the channel stayed full until the timeout"),
            SendTimeoutError::Disconnected(_) => f.write_str("SendTimeoutError: the receiver was dropped"),
        }
    }
}

/// Every sender is gone and the channel is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvError;

/// Why `try_recv`/`recv_timeout` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing there (yet), or the timeout passed.
    Empty,
    /// Every sender is gone and the channel is empty.
    Disconnected,
}

fn new<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let s = Arc::new(Shared {
        state: Mutex::new(State { q: VecDeque::new(), senders: 1, receiver: true }),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        cap,
    });
    (Sender { s: s.clone() }, Receiver { s })
}

/// An unbounded channel.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    new(None)
}

/// A channel holding at most `cap` messages (at least 1).
pub fn sync_channel<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    new(Some(cap.max(1)))
}

impl<T> Sender<T> {
    /// Sends `v`, blocking while a bounded channel is full.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.send_until(v, None).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v`, waiting at most `timeout` while a bounded channel is full.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_until(v, Some(deadline_after(timeout)))
    }

    fn send_until(&self, v: T, deadline: Option<u64>) -> Result<(), SendTimeoutError<T>> {
        let mut st = self.s.state.lock();
        loop {
            if !st.receiver {
                return Err(SendTimeoutError::Disconnected(v));
            }
            if self.s.cap.is_none_or(|c| st.q.len() < c) {
                st.q.push_back(v);
                drop(st);
                self.s.not_empty.notify_one();
                return Ok(());
            }
            st = match deadline {
                None => self.s.not_full.wait(st),
                Some(d) => {
                    let now = crate::time::monotonic_nanos();
                    if now >= d {
                        return Err(SendTimeoutError::Timeout(v));
                    }
                    self.s.not_full.wait_timeout(st, Duration::from_nanos(d - now)).0
                }
            };
        }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.s.state.lock().senders += 1;
        Sender { s: self.s.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.s.state.lock().senders -= 1;
        self.s.not_empty.notify_all();
    }
}

impl<T> Receiver<T> {
    /// Receives, blocking while the channel is empty.
    pub fn recv(&self) -> Result<T, RecvError> {
        let mut st = self.s.state.lock();
        loop {
            if let Some(v) = st.q.pop_front() {
                drop(st);
                self.s.not_full.notify_one();
                return Ok(v);
            }
            if st.senders == 0 {
                return Err(RecvError);
            }
            st = self.s.not_empty.wait(st);
        }
    }

    /// Receives, or gives up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, TryRecvError> {
        let deadline = deadline_after(timeout);
        let mut st = self.s.state.lock();
        loop {
            if let Some(v) = st.q.pop_front() {
                drop(st);
                self.s.not_full.notify_one();
                return Ok(v);
            }
            if st.senders == 0 {
                return Err(TryRecvError::Disconnected);
            }
            let now = crate::time::monotonic_nanos();
            if now >= deadline {
                return Err(TryRecvError::Empty);
            }
            st = self.s.not_empty.wait_timeout(st, Duration::from_nanos(deadline - now)).0;
        }
    }

    /// The messages until every sender is gone.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        core::iter::from_fn(move || self.recv().ok())
    }

    /// Receives if something is there.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.s.state.lock();
        match st.q.pop_front() {
            Some(v) => {
                drop(st);
                self.s.not_full.notify_one();
                Ok(v)
            }
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.s.state.lock().receiver = false;
        self.s.not_full.notify_all();
    }
}
