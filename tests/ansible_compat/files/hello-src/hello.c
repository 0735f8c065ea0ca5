#include <stdio.h>
int main(void) { puts("hello from compat"); return 0; }
