/* fault.h - a model file truncated or rewritten while attnscope has it mapped
 * makes the next read of its weights raise SIGBUS; this turns that into one
 * clear line naming the file and exit status 1 instead of a silent crash. */
#ifndef REPL_FAULT_H
#define REPL_FAULT_H

/* Installs the SIGBUS handler (call once, early in main). When the faulting
 * address lies in a file mapping, the handler runs the cleanup hook (if set),
 * writes "attnscope: FILE changed or was truncated while in use (SIGBUS
 * reading its mapping); stopping" to stderr and exits with status 1. Any
 * other SIGBUS is a bug: the default action runs (core dump). */
void fault_install(void);

/* A function the handler calls before writing its line, e.g. the TUI's
 * terminal restore; NULL for none. It runs in a signal handler. */
void fault_set_cleanup(void (*fn)(void));

#endif
