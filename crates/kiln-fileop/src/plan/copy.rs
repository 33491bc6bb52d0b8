//! The copy itself, as fsutil's `copy.Copy` walks it: one source node onto the
//! destination (`prepareTargetDir`, file or tree), directories created only once something
//! inside them is included, and the Merkle leaves of what was copied.

use std::path::Path;

use kiln_context::{MatchInfo, PatternMatcher};
use kiln_layer::{Entry, EntryKind};

use super::{Data, Node, Origin, Pending, Planner, entry_from_stat, not_found};
use crate::error::FileOpError;
use crate::gopath;
use crate::merkle::{Leaf, LeafKind};
use crate::view::{Kind, Stat};

impl Planner<'_> {
    /// One fsutil `Copy` call: destination directories, `prepareTargetDir`, then the copy.
    pub(crate) fn copy_one(
        &mut self,
        node: Node,
        base: &str,
        copy_dir_contents: bool,
    ) -> Result<(), FileOpError> {
        let dest = self.dest();
        let last = gopath::last_element(&dest);
        let ensure = if last.is_empty() || last == "." {
            dest.clone()
        } else {
            dest[..dest.len() - last.len()].to_owned()
        };
        let mode = self.created_dir_mode();
        let ensured = self.resolve_dest(&ensure)?;
        self.mkdir_all(&ensured, mode)?;
        let resolved_dest = self.resolve_dest(&gopath::clean(&dest))?;

        let src_stat = match &node {
            Node::Tree(rel) => self
                .source_root()
                .lstat(rel)?
                .ok_or_else(|| not_found(&format!("/{}", rel.display()), self.source_root()))?,
            Node::Single { stat, .. } => stat.clone(),
        };
        let src_is_dir = src_stat.kind == Kind::Dir;
        let dest_stat = self.dest_lstat(&resolved_dest)?;
        let mut dest_path = resolved_dest;
        if (!copy_dir_contents && src_is_dir && dest_stat.is_some())
            || (!src_is_dir && dest_stat.as_ref().is_some_and(|s| s.kind == Kind::Dir))
        {
            dest_path.push(base);
        }
        let target = if copy_dir_contents && src_is_dir && dest_stat.is_none() {
            dest_path.clone()
        } else {
            dest_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        self.mkdir_all(&target, mode)?;
        if dest_path.as_os_str().is_empty() && !src_is_dir {
            return Err(FileOpError::ReplaceDirectoryWithFile { path: dest_path });
        }

        self.inodes.clear();
        self.pending.clear();
        match node {
            Node::Tree(rel) => {
                let copy = |planner: &mut Self| {
                    planner.copy_node(
                        &rel,
                        Some(src_stat),
                        Path::new(""),
                        &dest_path,
                        false,
                        &MatchInfo::default(),
                        &MatchInfo::default(),
                    )
                };
                if src_is_dir {
                    self.with_prefetch(&rel, copy)
                } else {
                    copy(self)
                }
            }
            Node::Single {
                stat,
                data,
                leaf_path,
            } => {
                self.copy_file_like(&stat, data.clone(), &dest_path)?;
                self.copy_file_info(&dest_path, &stat);
                self.push_leaf(leaf_path, &stat, None);
                if let Some(leaf) = self.leaves.last_mut() {
                    leaf.data = data;
                }
                Ok(())
            }
        }
    }

    /// fsutil's `copier.copy` for one node of a source tree; `stat` is its `lstat` when the
    /// caller has it.
    #[allow(clippy::too_many_arguments)]
    fn copy_node(
        &mut self,
        src: &Path,
        stat: Option<Stat>,
        comps: &Path,
        target: &Path,
        overwrite: bool,
        inc_parent: &MatchInfo,
        exc_parent: &MatchInfo,
    ) -> Result<(), FileOpError> {
        let mut include = true;
        let mut excluded = false;
        let mut inc_info = MatchInfo::default();
        let mut exc_info = MatchInfo::default();
        if !comps.as_os_str().is_empty() {
            let comps_str = comps.to_string_lossy();
            if let Some(m) = &self.include {
                let (hit, info) = m
                    .matches_using_parent_results(&comps_str, inc_parent)
                    .map_err(FileOpError::Pattern)?;
                include = hit;
                inc_info = info;
            }
            if let Some(m) = &self.exclude {
                let (hit, info) = m
                    .matches_using_parent_results(&comps_str, exc_parent)
                    .map_err(FileOpError::Pattern)?;
                exc_info = info;
                if hit {
                    include = false;
                    excluded = true;
                }
            }
            let exceptions = self
                .exclude
                .as_ref()
                .is_some_and(PatternMatcher::has_exclusions);
            if !include && self.include.is_none() && !exceptions {
                if stat.as_ref().is_none_or(|s| s.kind == Kind::Dir) {
                    self.skip_prefetch(src);
                }
                return Ok(());
            }
        }
        let stat = match stat {
            Some(s) => s,
            None => match self.source_root().lstat(src)? {
                Some(s) => s,
                None => return Ok(()),
            },
        };
        let is_dir = stat.kind == Kind::Dir;
        if !include && !is_dir {
            return Ok(());
        }
        if is_dir {
            let target_existed = self.dest_lstat(target)?.is_some();
            if include {
                self.create_pending_parents(overwrite)?;
            }
            let created = self.copy_directory(
                src, comps, target, &stat, overwrite, include, excluded, &inc_info, &exc_info,
            )?;
            if overwrite || created {
                if include {
                    self.copy_file_info(target, &stat);
                }
            } else if target_existed && !target.as_os_str().is_empty() {
                // Restored: the existing directory keeps its metadata but the source's mtime.
                // Not the root, which no layer holds (BuildKit's differ never reports it).
                self.planned_dir(target)?.entry.mtime = stat.mtime;
            }
            if include {
                self.push_leaf(format!("/{}", src.display()), &stat, None);
            }
            return Ok(());
        }
        // A non-directory (always included here).
        self.create_pending_parents(overwrite)?;
        let group = stat.link_id.map(|id| {
            *self.inodes.entry(id).or_insert_with(|| {
                self.link_groups += 1;
                self.link_groups
            })
        });
        let (uid, gid, mode) = self.meta_for(&stat);
        let planned = self.copy_file_like(&stat, Data::Source(src.to_owned()), target)?;
        planned.link_group = group;
        // fsutil's `copyFileInfo`.
        planned.entry.uid = uid;
        planned.entry.gid = gid;
        planned.entry.mode = mode;
        planned.entry.mtime = stat.mtime;
        let link_target = match &planned.entry.kind {
            EntryKind::Symlink(t) => Some(t.to_string_lossy().into_owned()),
            _ => None,
        };
        self.push_leaf(format!("/{}", src.display()), &stat, link_target);
        let leaf = self.leaves.last_mut().expect("just pushed");
        leaf.data = match stat.kind {
            Kind::File => Data::Source(src.to_owned()),
            _ => Data::None,
        };
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_directory(
        &mut self,
        src: &Path,
        comps: &Path,
        dst: &Path,
        stat: &Stat,
        overwrite: bool,
        include: bool,
        excluded: bool,
        inc_info: &MatchInfo,
        exc_info: &MatchInfo,
    ) -> Result<bool, FileOpError> {
        let mut created = false;
        if include {
            created = self.copy_directory_only(dst, stat, overwrite)?;
        }
        self.pending.push(Pending {
            dst: dst.to_owned(),
            stat: stat.clone(),
            copied: include,
        });
        let result = (|| {
            let exceptions = self
                .exclude
                .as_ref()
                .is_some_and(PatternMatcher::has_exclusions);
            if excluded && !exceptions {
                self.skip_prefetch(src);
                return Ok(());
            }
            for (name, stat) in self.list_dir(src)? {
                self.copy_node(
                    &src.join(&name),
                    stat,
                    &comps.join(&name),
                    &dst.join(&name),
                    true,
                    inc_info,
                    exc_info,
                )?;
            }
            Ok(())
        })();
        self.pending.pop();
        result.map(|()| created)
    }

    /// fsutil's `copyDirectoryOnly`: make the directory with the source's mode, or refuse a
    /// non-directory, or (inside a copied tree) give an existing one the source's mode.
    fn copy_directory_only(
        &mut self,
        dst: &Path,
        stat: &Stat,
        overwrite: bool,
    ) -> Result<bool, FileOpError> {
        match self.dest_lstat(dst)? {
            None => {
                let mut entry = Entry::new(dst.to_owned(), EntryKind::Dir);
                entry.mode = stat.mode;
                entry.mtime = self.op.created_mtime;
                self.insert(entry, Data::None, Origin::Copied).fresh = true;
                Ok(true)
            }
            Some(s) if s.kind != Kind::Dir => Err(FileOpError::CopyToNonDirectory {
                path: dst.to_owned(),
            }),
            Some(_) => {
                if overwrite {
                    self.planned_dir(dst)?.entry.mode = stat.mode;
                }
                Ok(false)
            }
        }
    }

    fn create_pending_parents(&mut self, overwrite: bool) -> Result<(), FileOpError> {
        for i in 0..self.pending.len() {
            if self.pending[i].copied {
                continue;
            }
            let dst = self.pending[i].dst.clone();
            let stat = self.pending[i].stat.clone();
            if self.copy_directory_only(&dst, &stat, overwrite)? {
                self.copy_file_info(&dst, &stat);
                if i == 0 {
                    // The directory a source directory's contents go into keeps the source's
                    // own mode: `--chmod` applies to what is copied into it (Docker 20.10).
                    if let Some(p) = self.entries.get_mut(&dst) {
                        p.entry.mode = stat.mode;
                    }
                }
            }
            self.pending[i].copied = true;
        }
        Ok(())
    }

    /// Writes a non-directory at `target` (fsutil's `ensureEmptyFileTarget` first).
    fn copy_file_like(
        &mut self,
        stat: &Stat,
        data: Data,
        target: &Path,
    ) -> Result<&mut super::Planned, FileOpError> {
        if self
            .dest_lstat(target)?
            .is_some_and(|s| s.kind == Kind::Dir)
        {
            return Err(FileOpError::ReplaceDirectoryWithFile {
                path: target.to_owned(),
            });
        }
        let (kind, data) = match stat.kind {
            Kind::File => (EntryKind::File, data),
            Kind::Symlink => {
                let Data::Source(src) = &data else {
                    unreachable!("only source trees hold symlinks")
                };
                (
                    EntryKind::Symlink(self.source_root().read_link(src)?),
                    Data::None,
                )
            }
            Kind::CharDevice => (
                EntryKind::CharDevice {
                    major: rustix::fs::major(stat.rdev),
                    minor: rustix::fs::minor(stat.rdev),
                },
                Data::None,
            ),
            Kind::BlockDevice => (
                EntryKind::BlockDevice {
                    major: rustix::fs::major(stat.rdev),
                    minor: rustix::fs::minor(stat.rdev),
                },
                Data::None,
            ),
            Kind::Fifo => (EntryKind::Fifo, Data::None),
            // A socket is recreated without its type bits: an empty regular file.
            Kind::Socket => (EntryKind::File, Data::None),
            Kind::Dir => unreachable!("directories are copied by copy_directory"),
        };
        let mut entry = entry_from_stat(target, stat, kind);
        if stat.kind == Kind::Socket {
            entry.size = 0;
        }
        Ok(self.insert(entry, data, Origin::Copied))
    }

    /// fsutil's `copyFileInfo`: owner (the chown user or the source's), mode (`--chmod` or
    /// the source's; never on symlinks), mtime (the source's).
    fn copy_file_info(&mut self, target: &Path, stat: &Stat) {
        let (uid, gid, mode) = self.meta_for(stat);
        if let Some(p) = self.entries.get_mut(target) {
            p.entry.uid = uid;
            p.entry.gid = gid;
            p.entry.mode = mode;
            p.entry.mtime = stat.mtime;
        }
    }

    /// Owner and mode a copied entry of `stat` ends with.
    pub(crate) fn meta_for(&self, stat: &Stat) -> (u64, u64, u32) {
        let (uid, gid) = self.owner.unwrap_or((stat.uid, stat.gid));
        let mode = match (&self.op.chmod, stat.kind) {
            (Some(chmod), k) if k != Kind::Symlink => chmod.apply(stat.mode, k == Kind::Dir),
            _ => stat.mode,
        };
        (uid, gid, mode)
    }

    pub(crate) fn push_leaf(&mut self, path: String, stat: &Stat, link_target: Option<String>) {
        let (uid, gid, mode) = self.meta_for(stat);
        let kind = match stat.kind {
            Kind::File | Kind::Socket => LeafKind::File,
            Kind::Dir => LeafKind::Dir,
            Kind::Symlink => LeafKind::Symlink,
            Kind::CharDevice => LeafKind::CharDevice,
            Kind::BlockDevice => LeafKind::BlockDevice,
            Kind::Fifo => LeafKind::Fifo,
        };
        self.leaves.push(Leaf {
            source_index: self.source_index,
            path,
            kind,
            mode,
            uid,
            gid,
            size: if kind == LeafKind::File { stat.size } else { 0 },
            rdev: stat.rdev,
            link_target: link_target.unwrap_or_default(),
            data: Data::None,
            stamp: stat.stamp,
        });
    }
}
