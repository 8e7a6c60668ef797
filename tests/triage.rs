//! Triage tests: policies on real data, the embedded answerer on CLINC150.
