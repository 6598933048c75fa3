// Placeholder: the web client replaces this file.
'use strict';
