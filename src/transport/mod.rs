//! Transport trait; ssh (russh), local; known_hosts.
