// Behavioural model of the Lattice ECP5 DP16KD (16 Kbit true dual-port block RAM) for
// simulating netlists that instantiate it (rtl/block_ram.py), written from Lattice's ECP5
// sysMEM usage guide (FPGA-TN-02204). Each port: DATA_WIDTH 18/9/4/2/1 (1024 x 18 ... 16384 x
// 1; the word address is AD[13:k] with k = 4/3/2/1/0, and at x18 AD0/AD1 enable the two
// 9-bit halves of a write), a clock enable CE, write enable WE, WRITEMODE NORMAL (the output
// keeps its value on a write), WRITETHROUGH or READBEFOREWRITE, the read latch, and with
// REGMODE "OUTREG" the output register (enable OCE); RST clears both (RESETMODE "SYNC": at
// the clock edge; "ASYNC": at once). A port
// reading the address the other port writes at the same edge gets the old word. Modelled:
// both ports at the same width, CSDECODE "0b000" with CS = 0, clocks not
// inverted, initial contents (INITVAL) at width 18; anything else stops the simulation with an
// error.
// DATA_WIDTH 36 on both ports is the pseudo-dual-port form (PDPW16KD as Yosys and nextpnr
// write it): 512 x 36, port A writes the word {DIB, DIA} at ADA[13:5] (WEA, and ADA[3:0]
// enable its four 9-bit bytes), port B reads the word at ADB[13:5] onto {DOB, DOA} (CEB; with
// REGMODE_A = REGMODE_B = "OUTREG" through the output register, OCEB), WEB must stay 0.
// Yosys's cells_sim_ecp5.v declares DP16KD's parameters only; tests/test_block_ram.py checks
// this model against the generic elaboration.
`timescale 1ns / 1ps
module DP16KD(DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0, ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0, CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0, DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0, ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0, CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0, DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0, DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED";
    parameter INIT_DATA = "STATIC";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter WID = 0;
    parameter [319:0] INITVAL_00 = 320'h0;
    parameter [319:0] INITVAL_01 = 320'h0;
    parameter [319:0] INITVAL_02 = 320'h0;
    parameter [319:0] INITVAL_03 = 320'h0;
    parameter [319:0] INITVAL_04 = 320'h0;
    parameter [319:0] INITVAL_05 = 320'h0;
    parameter [319:0] INITVAL_06 = 320'h0;
    parameter [319:0] INITVAL_07 = 320'h0;
    parameter [319:0] INITVAL_08 = 320'h0;
    parameter [319:0] INITVAL_09 = 320'h0;
    parameter [319:0] INITVAL_0A = 320'h0;
    parameter [319:0] INITVAL_0B = 320'h0;
    parameter [319:0] INITVAL_0C = 320'h0;
    parameter [319:0] INITVAL_0D = 320'h0;
    parameter [319:0] INITVAL_0E = 320'h0;
    parameter [319:0] INITVAL_0F = 320'h0;
    parameter [319:0] INITVAL_10 = 320'h0;
    parameter [319:0] INITVAL_11 = 320'h0;
    parameter [319:0] INITVAL_12 = 320'h0;
    parameter [319:0] INITVAL_13 = 320'h0;
    parameter [319:0] INITVAL_14 = 320'h0;
    parameter [319:0] INITVAL_15 = 320'h0;
    parameter [319:0] INITVAL_16 = 320'h0;
    parameter [319:0] INITVAL_17 = 320'h0;
    parameter [319:0] INITVAL_18 = 320'h0;
    parameter [319:0] INITVAL_19 = 320'h0;
    parameter [319:0] INITVAL_1A = 320'h0;
    parameter [319:0] INITVAL_1B = 320'h0;
    parameter [319:0] INITVAL_1C = 320'h0;
    parameter [319:0] INITVAL_1D = 320'h0;
    parameter [319:0] INITVAL_1E = 320'h0;
    parameter [319:0] INITVAL_1F = 320'h0;
    parameter [319:0] INITVAL_20 = 320'h0;
    parameter [319:0] INITVAL_21 = 320'h0;
    parameter [319:0] INITVAL_22 = 320'h0;
    parameter [319:0] INITVAL_23 = 320'h0;
    parameter [319:0] INITVAL_24 = 320'h0;
    parameter [319:0] INITVAL_25 = 320'h0;
    parameter [319:0] INITVAL_26 = 320'h0;
    parameter [319:0] INITVAL_27 = 320'h0;
    parameter [319:0] INITVAL_28 = 320'h0;
    parameter [319:0] INITVAL_29 = 320'h0;
    parameter [319:0] INITVAL_2A = 320'h0;
    parameter [319:0] INITVAL_2B = 320'h0;
    parameter [319:0] INITVAL_2C = 320'h0;
    parameter [319:0] INITVAL_2D = 320'h0;
    parameter [319:0] INITVAL_2E = 320'h0;
    parameter [319:0] INITVAL_2F = 320'h0;
    parameter [319:0] INITVAL_30 = 320'h0;
    parameter [319:0] INITVAL_31 = 320'h0;
    parameter [319:0] INITVAL_32 = 320'h0;
    parameter [319:0] INITVAL_33 = 320'h0;
    parameter [319:0] INITVAL_34 = 320'h0;
    parameter [319:0] INITVAL_35 = 320'h0;
    parameter [319:0] INITVAL_36 = 320'h0;
    parameter [319:0] INITVAL_37 = 320'h0;
    parameter [319:0] INITVAL_38 = 320'h0;
    parameter [319:0] INITVAL_39 = 320'h0;
    parameter [319:0] INITVAL_3A = 320'h0;
    parameter [319:0] INITVAL_3B = 320'h0;
    parameter [319:0] INITVAL_3C = 320'h0;
    parameter [319:0] INITVAL_3D = 320'h0;
    parameter [319:0] INITVAL_3E = 320'h0;
    parameter [319:0] INITVAL_3F = 320'h0;
    input DIA17;
    input DIA16;
    input DIA15;
    input DIA14;
    input DIA13;
    input DIA12;
    input DIA11;
    input DIA10;
    input DIA9;
    input DIA8;
    input DIA7;
    input DIA6;
    input DIA5;
    input DIA4;
    input DIA3;
    input DIA2;
    input DIA1;
    input DIA0;
    input ADA13;
    input ADA12;
    input ADA11;
    input ADA10;
    input ADA9;
    input ADA8;
    input ADA7;
    input ADA6;
    input ADA5;
    input ADA4;
    input ADA3;
    input ADA2;
    input ADA1;
    input ADA0;
    input CEA;
    input OCEA;
    input CLKA;
    input WEA;
    input RSTA;
    input CSA2;
    input CSA1;
    input CSA0;
    input DIB17;
    input DIB16;
    input DIB15;
    input DIB14;
    input DIB13;
    input DIB12;
    input DIB11;
    input DIB10;
    input DIB9;
    input DIB8;
    input DIB7;
    input DIB6;
    input DIB5;
    input DIB4;
    input DIB3;
    input DIB2;
    input DIB1;
    input DIB0;
    input ADB13;
    input ADB12;
    input ADB11;
    input ADB10;
    input ADB9;
    input ADB8;
    input ADB7;
    input ADB6;
    input ADB5;
    input ADB4;
    input ADB3;
    input ADB2;
    input ADB1;
    input ADB0;
    input CEB;
    input OCEB;
    input CLKB;
    input WEB;
    input RSTB;
    input CSB2;
    input CSB1;
    input CSB0;
    output DOA17;
    output DOA16;
    output DOA15;
    output DOA14;
    output DOA13;
    output DOA12;
    output DOA11;
    output DOA10;
    output DOA9;
    output DOA8;
    output DOA7;
    output DOA6;
    output DOA5;
    output DOA4;
    output DOA3;
    output DOA2;
    output DOA1;
    output DOA0;
    output DOB17;
    output DOB16;
    output DOB15;
    output DOB14;
    output DOB13;
    output DOB12;
    output DOB11;
    output DOB10;
    output DOB9;
    output DOB8;
    output DOB7;
    output DOB6;
    output DOB5;
    output DOB4;
    output DOB3;
    output DOB2;
    output DOB1;
    output DOB0;

    localparam WIDE = DATA_WIDTH_A == 36;
    initial begin
        if (WIDE && REGMODE_A != REGMODE_B) begin
            $display("DP16KD model: at DATA_WIDTH 36, REGMODE_A and REGMODE_B must agree");
            $finish;
        end
        if (DATA_WIDTH_A != DATA_WIDTH_B || (RESETMODE != "SYNC" && RESETMODE != "ASYNC")
                || CSDECODE_A != "0b000"
                || CSDECODE_B != "0b000") begin
            $display("DP16KD model: mode not modelled (DATA_WIDTH_A=%0d DATA_WIDTH_B=%0d RESETMODE=%s)",
                     DATA_WIDTH_A, DATA_WIDTH_B, RESETMODE);
            $finish;
        end
    end

    // Contents: INITVAL_00..3F hold the 1024 x 18 array, 16 words per parameter in 20-bit
    // slots (how Yosys writes them); modelled for ports of width 18 only.
    localparam [64*320-1:0] INIT_ALL = {INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38, INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30, INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28, INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20, INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18, INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10, INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08, INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};
    reg [17:0] mem [0:16383];
    integer i;
    initial begin
        for (i = 0; i < 16384; i = i + 1) mem[i] = 18'd0;
        if (DATA_WIDTH_A == 18)
            for (i = 0; i < 1024; i = i + 1) mem[i] = INIT_ALL[(i / 16) * 320 + (i % 16) * 20 +: 18];
        else if (INIT_ALL != 0) begin
            $display("DP16KD model: INITVAL is modelled at DATA_WIDTH 18 only (here %0d)", DATA_WIDTH_A);
            $finish;
        end
        if (CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
            $display("DP16KD model: inverted clocks are not modelled");
            $finish;
        end
    end

    // ---- port A
    localparam integer WA = DATA_WIDTH_A;
    localparam integer LOWA = WA == 18 ? 4 : WA == 9 ? 3 : WA == 4 ? 2 : WA == 2 ? 1 : 0;
    wire [13:0] adA = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [17:0] diA = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [13:0] indexA = adA >> LOWA;
    reg [17:0] latchA = 18'd0, outA = 18'd0;
    // RESETMODE "ASYNC": RST clears at once (the block wakes on it); "SYNC": at the edge
    wire rst_nowA = RESETMODE == "ASYNC" ? RSTA : 1'b0;
    always @(posedge CLKA or posedge rst_nowA) begin
        if (RSTA) latchA <= 18'd0;
        else if (!WIDE && CEA && {CSA2, CSA1, CSA0} == 3'b000) begin
            if (WEA) begin
                if (WA == 18) begin
                    if (ADA0) mem[indexA][8:0] <= diA[8:0];
                    if (ADA1) mem[indexA][17:9] <= diA[17:9];
                end else
                    mem[indexA] <= diA & ((18'd1 << WA) - 1);
                if (WRITEMODE_A == "WRITETHROUGH") latchA <= diA;
                else if (WRITEMODE_A == "READBEFOREWRITE") latchA <= mem[indexA];
            end else
                latchA <= mem[indexA];
        end
        if (RSTA) outA <= 18'd0;
        else if (OCEA) outA <= latchA;
    end
    wire [17:0] doA;  // (assigned at the end, with the 36-bit form)
    assign DOA0 = doA[0];
    assign DOA1 = doA[1];
    assign DOA2 = doA[2];
    assign DOA3 = doA[3];
    assign DOA4 = doA[4];
    assign DOA5 = doA[5];
    assign DOA6 = doA[6];
    assign DOA7 = doA[7];
    assign DOA8 = doA[8];
    assign DOA9 = doA[9];
    assign DOA10 = doA[10];
    assign DOA11 = doA[11];
    assign DOA12 = doA[12];
    assign DOA13 = doA[13];
    assign DOA14 = doA[14];
    assign DOA15 = doA[15];
    assign DOA16 = doA[16];
    assign DOA17 = doA[17];

    // ---- port B
    localparam integer WB = DATA_WIDTH_B;
    localparam integer LOWB = WB == 18 ? 4 : WB == 9 ? 3 : WB == 4 ? 2 : WB == 2 ? 1 : 0;
    wire [13:0] adB = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [17:0] diB = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] indexB = adB >> LOWB;
    reg [17:0] latchB = 18'd0, outB = 18'd0;
    // RESETMODE "ASYNC": RST clears at once (the block wakes on it); "SYNC": at the edge
    wire rst_nowB = RESETMODE == "ASYNC" ? RSTB : 1'b0;
    always @(posedge CLKB or posedge rst_nowB) begin
        if (RSTB) latchB <= 18'd0;
        else if (!WIDE && CEB && {CSB2, CSB1, CSB0} == 3'b000) begin
            if (WEB) begin
                if (WB == 18) begin
                    if (ADB0) mem[indexB][8:0] <= diB[8:0];
                    if (ADB1) mem[indexB][17:9] <= diB[17:9];
                end else
                    mem[indexB] <= diB & ((18'd1 << WB) - 1);
                if (WRITEMODE_B == "WRITETHROUGH") latchB <= diB;
                else if (WRITEMODE_B == "READBEFOREWRITE") latchB <= mem[indexB];
            end else
                latchB <= mem[indexB];
        end
        if (RSTB) outB <= 18'd0;
        else if (OCEB) outB <= latchB;
    end
    wire [17:0] doB;  // (assigned at the end, with the 36-bit form)
    assign DOB0 = doB[0];
    assign DOB1 = doB[1];
    assign DOB2 = doB[2];
    assign DOB3 = doB[3];
    assign DOB4 = doB[4];
    assign DOB5 = doB[5];
    assign DOB6 = doB[6];
    assign DOB7 = doB[7];
    assign DOB8 = doB[8];
    assign DOB9 = doB[9];
    assign DOB10 = doB[10];
    assign DOB11 = doB[11];
    assign DOB12 = doB[12];
    assign DOB13 = doB[13];
    assign DOB14 = doB[14];
    assign DOB15 = doB[15];
    assign DOB16 = doB[16];
    assign DOB17 = doB[17];
    // ---- the 36-bit pseudo-dual-port form: port A writes, port B reads
    reg [35:0] wide [0:511];
    reg [35:0] latchW = 36'd0, outW = 36'd0;
    initial for (i = 0; i < 512; i = i + 1) wide[i] = 36'd0;
    wire [8:0] wideA = adA[13:5];
    wire [8:0] wideB = adB[13:5];
    wire [35:0] diW = {diB, diA};
    always @(posedge CLKA) begin
        if (WIDE && CEA && WEA && {CSA2, CSA1, CSA0} == 3'b000) begin
            if (ADA0) wide[wideA][8:0] <= diW[8:0];
            if (ADA1) wide[wideA][17:9] <= diW[17:9];
            if (ADA2) wide[wideA][26:18] <= diW[26:18];
            if (ADA3) wide[wideA][35:27] <= diW[35:27];
        end
    end
    always @(posedge CLKB or posedge rst_nowB) begin
        if (RSTB) latchW <= 36'd0;
        else if (WIDE && CEB && {CSB2, CSB1, CSB0} == 3'b000) begin
            if (WEB) begin
                $display("DP16KD model: at DATA_WIDTH 36 port B only reads (WEB = 1)");
                $finish;
            end
            latchW <= wide[wideB];
        end
        if (RSTB) outW <= 36'd0;
        else if (OCEB) outW <= latchW;
    end
    wire [35:0] doW = REGMODE_B == "OUTREG" ? outW : latchW;

    assign doA = WIDE ? doW[17:0]
                      : (REGMODE_A == "OUTREG" ? outA : latchA) & ((18'd1 << WA) - 1);
    assign doB = WIDE ? doW[35:18]
                      : (REGMODE_B == "OUTREG" ? outB : latchB) & ((18'd1 << WB) - 1);
endmodule
