//! Installing and removing the kernelspec.
