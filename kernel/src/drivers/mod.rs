//! Device discovery shared by the subsystems that drive devices: the
//! virtio devices of the machine (`virtio`), found once at boot and handed
//! out by type to the network (`net`) and block (`block`) layers.

pub mod virtio;
