/* empty.c: keeps a library target valid while its folder has no sources of
 * its own yet (CMake refuses a library with no sources). */
extern int gh_empty_unit;
int gh_empty_unit;
