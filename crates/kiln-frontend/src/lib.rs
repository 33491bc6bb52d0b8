//! Typed Dockerfile instructions, stages and the stage graph.
