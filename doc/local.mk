# SPDX-License-Identifier: MIT
# doc/local.mk - man pages and the user guide.
# Every page under doc/man*/ is listed here so that `make install` installs
# it and `make dist` ships it; test/check-man.sh fails if one is missing.
# Functions documented together share one page; the others' pages are
# symbolic links to it (so `man -l doc/man3/<name>.3` renders every page).
# Pages are always shipped; --disable-man only skips installing them.

MAN3_PAGES = \
	doc/man3/dsm_attach.3 \
	doc/man3/dsm_cancel_on_detach.3 \
	doc/man3/dsm_control_handle.3 \
	doc/man3/dsm_crash_critical.3 \
	doc/man3/dsm_create.3 \
	doc/man3/dsm_detach.3 \
	doc/man3/dsm_detach_all.3 \
	doc/man3/dsm_errdetail.3 \
	doc/man3/dsm_errhint.3 \
	doc/man3/dsm_errmsg.3 \
	doc/man3/dsm_find_mapping.3 \
	doc/man3/dsm_gc.3 \
	doc/man3/dsm_handle_format.3 \
	doc/man3/dsm_handle_parse.3 \
	doc/man3/dsm_impl_attach.3 \
	doc/man3/dsm_impl_create.3 \
	doc/man3/dsm_impl_default_type.3 \
	doc/man3/dsm_impl_destroy.3 \
	doc/man3/dsm_impl_detach.3 \
	doc/man3/dsm_impl_instance_close.3 \
	doc/man3/dsm_impl_instance_id.3 \
	doc/man3/dsm_impl_instance_open.3 \
	doc/man3/dsm_impl_instance_type.3 \
	doc/man3/dsm_impl_segment_name.3 \
	doc/man3/dsm_impl_type_available.3 \
	doc/man3/dsm_impl_type_from_name.3 \
	doc/man3/dsm_impl_type_name.3 \
	doc/man3/dsm_inspect_close.3 \
	doc/man3/dsm_inspect_instance.3 \
	doc/man3/dsm_inspect_metrics.3 \
	doc/man3/dsm_inspect_nprocesses.3 \
	doc/man3/dsm_inspect_nsegments.3 \
	doc/man3/dsm_inspect_open.3 \
	doc/man3/dsm_inspect_process.3 \
	doc/man3/dsm_inspect_segment.3 \
	doc/man3/dsm_inspect_segment_holders.3 \
	doc/man3/dsm_on_detach.3 \
	doc/man3/dsm_pin_mapping.3 \
	doc/man3/dsm_pin_segment.3 \
	doc/man3/dsm_resowner_create.3 \
	doc/man3/dsm_resowner_current.3 \
	doc/man3/dsm_resowner_delete.3 \
	doc/man3/dsm_resowner_release.3 \
	doc/man3/dsm_resowner_set_current.3 \
	doc/man3/dsm_scan_host.3 \
	doc/man3/dsm_segment_address.3 \
	doc/man3/dsm_segment_handle.3 \
	doc/man3/dsm_segment_map_length.3 \
	doc/man3/dsm_set_crash_hook.3 \
	doc/man3/dsm_set_log_hook.3 \
	doc/man3/dsm_settings_define_bool.3 \
	doc/man3/dsm_settings_define_enum.3 \
	doc/man3/dsm_settings_define_int.3 \
	doc/man3/dsm_settings_define_string.3 \
	doc/man3/dsm_settings_describe.3 \
	doc/man3/dsm_settings_free.3 \
	doc/man3/dsm_settings_get_bool.3 \
	doc/man3/dsm_settings_get_enum.3 \
	doc/man3/dsm_settings_get_int.3 \
	doc/man3/dsm_settings_get_string.3 \
	doc/man3/dsm_settings_load_buffer.3 \
	doc/man3/dsm_settings_load_file.3 \
	doc/man3/dsm_settings_new.3 \
	doc/man3/dsm_settings_parse_option.3 \
	doc/man3/dsm_settings_set.3 \
	doc/man3/dsm_settings_show.3 \
	doc/man3/dsm_strerror.3 \
	doc/man3/dsm_supervisor_check_workers.3 \
	doc/man3/dsm_supervisor_reset.3 \
	doc/man3/dsm_supervisor_shutdown.3 \
	doc/man3/dsm_supervisor_start.3 \
	doc/man3/dsm_supervisor_worker_exited.3 \
	doc/man3/dsm_unpin_mapping.3 \
	doc/man3/dsm_unpin_segment.3 \
	doc/man3/dsm_version.3 \
	doc/man3/dsm_worker_attach.3 \
	doc/man3/dsm_worker_exit.3 \
	doc/man3/dsm_worker_init_after_fork.3

MAN7_PAGES = \
	doc/man7/dynshm.7
MAN1_PAGES = doc/man1/dsm_demo.1 doc/man1/dsmctl.1

EXTRA_DIST += $(MAN3_PAGES) $(MAN7_PAGES) $(MAN1_PAGES)
man1_MANS =
if BUILD_MAN
man3_MANS = $(MAN3_PAGES)
man7_MANS = $(MAN7_PAGES)
if BUILD_DEMO
man1_MANS += doc/man1/dsm_demo.1
endif
if BUILD_TOOLS
man1_MANS += doc/man1/dsmctl.1
endif
endif

# The user guide and the other documents, installed under $(docdir)
# (share/doc/dynshm) and shipped by `make dist`.  Add more with +=.
dist_doc_DATA = doc/guide.md
dist_doc_DATA += doc/dsmctl.md
dist_doc_DATA += doc/performance.md
dist_doc_DATA += doc/threat-model.md
dist_doc_DATA += doc/reliability.md
dist_doc_DATA += doc/internals.md

# Issue 13: dynamic shared areas and robust user locks.
MAN3_PAGES += \
	doc/man3/dsm_area_allocate.3 \
	doc/man3/dsm_area_attach.3 \
	doc/man3/dsm_area_attach_in_place.3 \
	doc/man3/dsm_area_create.3 \
	doc/man3/dsm_area_create_in_place.3 \
	doc/man3/dsm_area_detach.3 \
	doc/man3/dsm_area_dump.3 \
	doc/man3/dsm_area_free.3 \
	doc/man3/dsm_area_get_address.3 \
	doc/man3/dsm_area_handle.3 \
	doc/man3/dsm_area_pin.3 \
	doc/man3/dsm_area_pin_mapping.3 \
	doc/man3/dsm_area_set_size_limit.3 \
	doc/man3/dsm_area_stats_get.3 \
	doc/man3/dsm_area_total_size.3 \
	doc/man3/dsm_area_trim.3 \
	doc/man3/dsm_area_unpin.3 \
	doc/man3/dsm_area_unpin_mapping.3 \
	doc/man3/dsm_lock_acquire.3 \
	doc/man3/dsm_lock_init.3 \
	doc/man3/dsm_lock_mark_consistent.3 \
	doc/man3/dsm_lock_release.3 \
	doc/man3/dsm_lock_try_acquire.3 \
	doc/man3/dsm_rwlock_acquire.3 \
	doc/man3/dsm_rwlock_init.3 \
	doc/man3/dsm_rwlock_mark_consistent.3 \
	doc/man3/dsm_rwlock_release.3

# issue 14: the table of contents and the message queue.
MAN3_PAGES += \
	doc/man3/dsm_mq_attach.3 \
	doc/man3/dsm_mq_create.3 \
	doc/man3/dsm_mq_detach.3 \
	doc/man3/dsm_mq_estimate.3 \
	doc/man3/dsm_mq_receive.3 \
	doc/man3/dsm_mq_ref_map.3 \
	doc/man3/dsm_mq_send.3 \
	doc/man3/dsm_mq_send_ref.3 \
	doc/man3/dsm_mq_sendv.3 \
	doc/man3/dsm_mq_set_peer.3 \
	doc/man3/dsm_toc_allocate.3 \
	doc/man3/dsm_toc_attach.3 \
	doc/man3/dsm_toc_create.3 \
	doc/man3/dsm_toc_estimate.3 \
	doc/man3/dsm_toc_estimate_chunk.3 \
	doc/man3/dsm_toc_estimate_keys.3 \
	doc/man3/dsm_toc_estimator_init.3 \
	doc/man3/dsm_toc_insert.3 \
	doc/man3/dsm_toc_lookup.3 \
	doc/man3/dsm_toc_release.3

# Issue 15: the concurrent hash table in an area.
MAN3_PAGES += \
	doc/man3/dsm_hash_attach.3 \
	doc/man3/dsm_hash_bytes.3 \
	doc/man3/dsm_hash_create.3 \
	doc/man3/dsm_hash_delete_entry.3 \
	doc/man3/dsm_hash_delete_key.3 \
	doc/man3/dsm_hash_destroy.3 \
	doc/man3/dsm_hash_detach.3 \
	doc/man3/dsm_hash_find.3 \
	doc/man3/dsm_hash_find_or_insert.3 \
	doc/man3/dsm_hash_get_handle.3 \
	doc/man3/dsm_hash_lookup.3 \
	doc/man3/dsm_hash_release.3 \
	doc/man3/dsm_hash_scan_begin.3 \
	doc/man3/dsm_hash_scan_delete_current.3 \
	doc/man3/dsm_hash_scan_end.3 \
	doc/man3/dsm_hash_scan_next.3 \
	doc/man3/dsm_hash_stats_get.3 \
	doc/man3/dsm_hash_string.3 \
	doc/man3/dsm_hash_validate.3

# Issue 16: named shared memory (the registry).
MAN3_PAGES += \
	doc/man3/dsm_named_area_get.3 \
	doc/man3/dsm_named_delete.3 \
	doc/man3/dsm_named_hash_get.3 \
	doc/man3/dsm_named_list.3 \
	doc/man3/dsm_named_segment_get.3 \
	doc/man3/dsm_named_type_name.3
