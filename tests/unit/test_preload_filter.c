/* System-wide mode's process filter and the constructor's own ini reader
 * (src/preload/filter.c): which executables and command lines are
 * included, and which config lines it takes, the way inih would. */
#include "config.h"

#include "filter.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARGS(lit) lit, sizeof(lit)

static tgo__pf_settings read_ini(const char *text, size_t piece) {
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  tgo__pf_ini r;
  tgo__pf_ini_start(&r, &s);
  size_t n = strlen(text);
  for (size_t i = 0; i < n; i += piece)
    tgo__pf_ini_feed(&r, text + i, n - i < piece ? n - i : piece);
  tgo__pf_ini_end(&r);
  return s;
}

Test(glob, a_glob_without_slash_matches_the_executable_name) {
  cr_assert(tgo__pf_match_path("python3*", "/usr/bin/python3.11"));
  cr_assert(tgo__pf_match_path("python3*", "/root/.pyenv/versions/3.13.1/bin/python3.13"));
  cr_assert_not(tgo__pf_match_path("python3*", "/usr/bin/bash"));
  cr_assert_not(tgo__pf_match_path("python3*", "/usr/lib/python3/dist-packages/x"));
}

Test(glob, a_glob_with_slash_matches_the_whole_path_and_star_crosses_directories) {
  cr_assert(tgo__pf_match_path("/opt/*/python3*", "/opt/venvs/a/bin/python3.12"));
  cr_assert_not(tgo__pf_match_path("/usr/bin/python3*", "/usr/local/bin/python3.12"));
}

Test(glob, lists_are_comma_separated_and_trimmed) {
  cr_assert(tgo__pf_match_path("bash, uwsgi* ,python3*", "/usr/bin/uwsgi-core"));
  cr_assert(tgo__pf_match_path(" bash , uwsgi* ,python3* ", "/usr/bin/python3.11"));
  cr_assert_not(tgo__pf_match_path("", "/usr/bin/python3.11"));
  cr_assert_not(tgo__pf_match_path(",,", "/usr/bin/python3.11"));
}

Test(glob, args_match_one_element_or_the_joined_command_line) {
  const char args[] = "/usr/bin/python3\0/usr/bin/gunicorn\0-b\0" "127.0.0.1:8000\0orders:app";
  cr_assert(tgo__pf_match_args("*gunicorn", ARGS(args)));
  cr_assert(tgo__pf_match_args("orders:*", ARGS(args)));
  cr_assert(tgo__pf_match_args("*gunicorn -b * orders:app", ARGS(args)));
  cr_assert_not(tgo__pf_match_args("billing:*", ARGS(args)));
  cr_assert_not(tgo__pf_match_args("", ARGS(args)));
  /* Without the trailing NUL, as a cut read gives it. */
  cr_assert(tgo__pf_match_args("orders:app", args, sizeof args - 1));
}

Test(filter, only_python_is_included_by_default) {
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  cr_assert(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3\0app.py")));
  cr_assert_not(tgo__pf_included(&s, "/usr/bin/bash", ARGS("bash\0-c\0python3 x")));
  cr_assert_not(tgo__pf_included(&s, "/usr/bin/perl", ARGS("perl")));
  cr_assert_not(tgo__pf_included(&s, "", ARGS("python3")));
}

Test(filter, include_paths_replace_the_default) {
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  strcpy(s.include_paths, "/usr/bin/uwsgi*");
  cr_assert(tgo__pf_included(&s, "/usr/bin/uwsgi-core", ARGS("uwsgi")));
  cr_assert_not(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3")));
}

Test(filter, include_args_narrow_and_excludes_win) {
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  strcpy(s.include_args, "*gunicorn*");
  cr_assert(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3\0/usr/bin/gunicorn\0orders:app")));
  cr_assert_not(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3\0-m\0pip\0install")));
  strcpy(s.exclude_args, "billing:*");
  cr_assert_not(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3\0/usr/bin/gunicorn\0billing:app")));
  cr_assert(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3\0/usr/bin/gunicorn\0orders:app")));
  strcpy(s.exclude_paths, "/usr/bin/*");
  cr_assert_not(tgo__pf_included(&s, "/usr/bin/python3.11", ARGS("python3\0/usr/bin/gunicorn\0orders:app")));
  cr_assert(tgo__pf_included(&s, "/opt/py/bin/python3.12", ARGS("python3\0/usr/bin/gunicorn\0orders:app")));
}

Test(ini, reads_short_and_full_names_in_tigerops_and_before_any_section) {
  tgo__pf_settings s = read_ini("system_wide = true\n"
                                "[tigerops]\n"
                                "INCLUDE_PATHS=python3*,uwsgi*\n"
                                "TIGEROPS_EXCLUDE_ARGS : *billing* ; not this one\n"
                                "enabled = yes\n",
                                4096);
  cr_assert_eq(s.system_wide, 1);
  cr_assert_eq(s.enabled, 1);
  cr_assert_str_eq(s.include_paths, "python3*,uwsgi*");
  cr_assert_str_eq(s.exclude_args, "*billing*");
  cr_assert_eq(s.otel_disabled, TGO__PF_UNSET);
}

Test(ini, lines_split_across_reads_are_whole) {
  const char *text = "; comment\r\n# another\r\n[tigerops]\r\nsystem_wide = on\r\ninclude_args = *orders*\r\n";
  for (size_t piece = 1; piece < 9; piece++) {
    tgo__pf_settings s = read_ini(text, piece);
    cr_assert_eq(s.system_wide, 1, "piece %zu", piece);
    cr_assert_str_eq(s.include_args, "*orders*", "piece %zu", piece);
  }
}

Test(ini, other_sections_comments_and_bad_values_are_ignored) {
  tgo__pf_settings s = read_ini("[tigerops]\nsystem_wide = maybe\n;system_wide = true\n  # system_wide = on\n"
                                "[other]\nsystem_wide = true\ninclude_paths = bash\n"
                                "[otel]\nsdk_disabled = true\nTIGEROPS_EXCLUDE_PATHS = /opt/*\n"
                                "[ tigerops ]\nexclude_args =\n",
                                4096);
  cr_assert_eq(s.system_wide, 0);
  cr_assert_str_eq(s.include_paths, "");
  cr_assert_eq(s.otel_disabled, 1);
  cr_assert_str_eq(s.exclude_paths, "/opt/*");
  cr_assert_str_eq(s.exclude_args, "");
}

Test(ini, an_overlong_line_is_dropped_not_cut) {
  char text[3 * TGO__PF_VALUE_MAX];
  int n = snprintf(text, sizeof text, "include_paths = ");
  memset(text + n, 'a', 2 * TGO__PF_VALUE_MAX);
  strcpy(text + n + 2 * TGO__PF_VALUE_MAX, "*\nexclude_args = x\n");
  tgo__pf_settings s = read_ini(text, 100);
  cr_assert_str_eq(s.include_paths, "");
  cr_assert_str_eq(s.exclude_args, "x");
}

Test(env, environment_overrides_the_file) {
  char *envp[] = {"TIGEROPS_SYSTEM_WIDE=false", "TIGEROPS_INCLUDE_ARGS=*x*", "TIGEROPS_SYSTEM_WIDEX=true",
                  NULL};
  tgo__pf_settings s = read_ini("system_wide = true\ninclude_args = *y*\nexclude_args = *z*\n", 4096);
  tgo__pf_load_env(&s, envp);
  cr_assert_eq(s.system_wide, 0);
  cr_assert_str_eq(s.include_args, "*x*");
  cr_assert_str_eq(s.exclude_args, "*z*");
}

Test(file, only_a_regular_file_is_read) {
  char dir[] = "/tmp/tgo-pf-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char path[64], fifo[64];
  snprintf(path, sizeof path, "%s/t.ini", dir);
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  FILE *f = fopen(path, "w");
  fputs("[tigerops]\nsystem_wide = true\nexclude_paths = /opt/*", f); /* no final newline */
  fclose(f);
  tgo__pf_settings s;
  tgo__pf_defaults(&s);
  cr_assert_eq(tgo__pf_load_file(&s, path), 0);
  cr_assert_eq(s.system_wide, 1);
  cr_assert_str_eq(s.exclude_paths, "/opt/*");
  cr_assert_eq(mkfifo(fifo, 0600), 0);
  tgo__pf_defaults(&s);
  cr_assert_lt(tgo__pf_load_file(&s, fifo), 0); /* returns at once: no writer needed */
  cr_assert_lt(tgo__pf_load_file(&s, dir), 0);
  cr_assert_lt(tgo__pf_load_file(&s, "/nonexistent/tigerops.ini"), 0);
  cr_assert_eq(s.system_wide, 0);
  unlink(path);
  unlink(fifo);
  rmdir(dir);
}
