#include <stdio.h>
#include <stdlib.h>
int main(int c, char **v){ char *p = malloc(100000); printf("hello from C %s %p\n", c>1?v[1]:"-", (void*)main); free(p); return 5; }
