//! The one minijinja Environment (strict undefined, Ansible filters).
