//! Prints the path of the day's Debian bookworm root filesystem tarball, making it first when
//! needed ([`kiln_test_support::bases::debian_rootfs_tar`]): for the bench scripts.

fn main() {
    println!(
        "{}",
        kiln_test_support::bases::debian_rootfs_tar().display()
    );
}
